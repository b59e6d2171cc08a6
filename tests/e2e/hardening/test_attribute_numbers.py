"""Numbers past the float range: `{"inc": n}` skips its object, a price is a 400; no 500, no stored null."""

from __future__ import annotations

from typing import Any

from tests.e2e.hardening.conftest import Hub

PAST = "inc takes the number past the largest a float can hold"


def _track(hub: Hub, **attributes: Any) -> Any:
    return hub.post("/users/track", {"attributes": [{"external_id": "u1", **attributes}]})


def _stored(hub: Hub) -> Any:
    body = {"external_ids": ["u1"], "fields_to_export": ["custom_attributes"]}
    return hub.post("/users/export/ids", body).json()["users"][0]["custom_attributes"]["n"]


def test_an_increment_past_the_largest_float_is_refused_and_the_number_kept(hub: Hub) -> None:
    assert _track(hub, n=1e308).status_code == 201
    refused = _track(hub, n={"inc": 1e308})
    assert refused.status_code == 201, refused.text
    assert refused.json()["attributes_processed"] == 0
    [error] = refused.json()["errors"]
    assert error == {"type": f"n: {PAST}", "input_array": "attributes", "index": 0}
    assert _stored(hub) == 1e308


def test_integers_past_the_float_range_are_increments_not_server_errors(hub: Hub) -> None:
    assert _track(hub, n={"inc": 10**309}).status_code == 201
    assert _stored(hub) == 10**309
    assert _track(hub, n={"inc": 1}).status_code == 201
    assert _stored(hub) == 10**309 + 1
    assert _track(hub, n={"inc": 1.5}).json()["attributes_processed"] == 0
    assert _stored(hub) == 10**309 + 1


def test_a_purchase_price_past_the_float_range_is_a_400_naming_it(hub: Hub) -> None:
    purchase = {"external_id": "u1", "product_id": "p", "currency": "USD", "price": 10**309, "time": "2024"}
    response = hub.post("/users/track", {"purchases": [purchase]})
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == ["purchases[0]: price must be a number"]
