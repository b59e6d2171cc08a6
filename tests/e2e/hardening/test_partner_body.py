"""A partner body that is not a JSON object is malformed (400), checked before the keys."""

from __future__ import annotations

import pytest

from cohorthub.cohorts.errors import BODY_TEXT
from tests.conftest import error_body
from tests.e2e.hardening.conftest import Hub


@pytest.mark.parametrize("path", ["/cohorts", "/cohorts/users"])
@pytest.mark.parametrize(("body", "kind"), [(b"[]", "an array"), (b"null", "null"), (b'"x"', "a string"),
                                            (b"7", "a number"), (b"true", "a boolean")])  # fmt: skip
def test_non_object_bodies_are_400_before_the_keys(hub: Hub, path: str, body: bytes, kind: str) -> None:
    response = hub.http.post(
        f"/partners/heap{path}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error_body(response) == {"message": BODY_TEXT, "errors": [f"the body is {kind}, not an object"]}


def test_an_object_without_keys_is_still_401(hub: Hub) -> None:
    response = hub.http.post("/partners/heap/cohorts", json={"cohort_id": "c1"})
    assert (response.status_code, response.json()["message"]) == (401, "Invalid Partner API key")


def test_an_unknown_partner_is_404_before_the_body(hub: Hub) -> None:
    response = hub.http.post(
        "/partners/nope/cohorts", content=b"[]", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 404
