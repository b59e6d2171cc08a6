"""The PyPI `braze-client` package, unchanged, driving the users API on a live server."""

from __future__ import annotations

import pytest
from braze.client import BrazeClient, BrazeClientError

from tests.conftest import LiveServer
from tests.e2e.identity.conftest import Workspace


@pytest.mark.parametrize("use_auth_header", [True, False])
def test_braze_client_tracks_exports_and_deletes(
    live_server: LiveServer, workspace: Workspace, use_auth_header: bool
) -> None:
    client = BrazeClient(api_key=workspace.key, api_url=live_server.url, use_auth_header=use_auth_header)
    tracked = client.user_track(
        attributes=[
            {"external_id": "bc-1", "first_name": "Jon", "email": "jon@example.com", "status": "Active"}
        ],
        events=[
            {
                "external_id": "bc-1",
                "name": "rented_movie",
                "time": "2024-03-01T12:00:00Z",
                "properties": {"title": "Alien"},
            }
        ],
        purchases=[
            {
                "external_id": "bc-1",
                "product_id": "ticket",
                "currency": "USD",
                "price": 9.99,
                "time": "2024-03-01T12:05:00Z",
            }
        ],
    )
    assert tracked["success"] is True
    assert tracked["status_code"] == 201
    assert (tracked["attributes_processed"], tracked["events_processed"], tracked["purchases_processed"]) == (
        1,
        1,
        1,
    )

    exported = client.user_export(
        external_ids=["bc-1"],
        fields_to_export=[
            "external_id",
            "first_name",
            "email",
            "custom_attributes",
            "custom_events",
            "purchases",
        ],
    )
    (user,) = exported["users"]
    assert user["external_id"] == "bc-1"
    assert (user["first_name"], user["email"]) == ("Jon", "jon@example.com")
    assert user["custom_attributes"] == {"status": "Active"}
    assert [(e["name"], e["count"]) for e in user["custom_events"]] == [("rented_movie", 1)]
    assert [(p["name"], p["count"]) for p in user["purchases"]] == [("ticket", 1)]

    by_email = client.user_export(email="jon@example.com", fields_to_export=["external_id"])
    assert by_email["users"] == [{"external_id": "bc-1"}]

    deleted = client.user_delete(external_ids=["bc-1"])
    assert (deleted["success"], deleted["deleted"]) == (True, 1)
    assert client.user_export(external_ids=["bc-1"])["users"] == []


def test_braze_client_sees_fatal_errors(live_server: LiveServer, workspace: Workspace) -> None:
    client = BrazeClient(api_key=workspace.key, api_url=live_server.url)
    event = {"external_id": "bc-1", "name": "e", "time": "2024-03-01T12:00:00Z"}
    with pytest.raises(BrazeClientError, match="Too many events"):
        client.user_track(events=[event] * 76)
    with pytest.raises(BrazeClientError, match="Invalid API key"):
        BrazeClient(api_key="wrong", api_url=live_server.url).user_track(attributes=[{"external_id": "x"}])


def test_braze_client_reports_non_fatal_errors(live_server: LiveServer, workspace: Workspace) -> None:
    client = BrazeClient(api_key=workspace.key, api_url=live_server.url)
    response = client.user_track(
        attributes=[{"external_id": "ok"}, {"external_id": "bad", "dob": "yesterday"}]
    )
    assert response["success"] is False  # the client's reading of `errors`
    assert response["errors"] == [
        {"type": "dob must be a date in the form YYYY-MM-DD", "input_array": "attributes", "index": 1}
    ]
