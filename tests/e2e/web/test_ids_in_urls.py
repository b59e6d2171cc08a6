"""Numbers a client puts in dashboard URLs (a page cursor, an account id) past what a row can hold are
refused like any other unknown value (400 or 404), never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.web.conftest import World, session


@pytest.mark.parametrize(
    "before",
    ["1:99999999999999999999999", "1:9223372036854775808", "1:9999999999999999999", "1:-5", "nan:1", "inf:1"],
)
def test_a_messages_cursor_out_of_range_is_a_400(world: World, before: str) -> None:
    exported = httpx.post(
        f"{world.url}/users/export/ids",
        json={"external_ids": ["u3"]},
        headers={"Authorization": f"Bearer {world.rest_key}"},
    )
    braze_id = exported.json()["users"][0]["braze_id"]
    with session(world, "viewer@acme.io") as (client, _):
        messages = f"/dashboard/users/{braze_id}/messages"
        assert client.get(messages, params={"before": "1:5"}).status_code == 200
        answer = client.get(messages, params={"before": before})
        assert answer.status_code == 400, answer.text
        assert "Not a page cursor" in answer.text


@pytest.mark.parametrize("account_id", ["9223372036854775808", "99999999999999999999999"])
def test_changing_the_role_of_an_account_id_no_row_can_have_is_a_404(world: World, account_id: str) -> None:
    with session(world, "admin@acme.io") as (client, csrf):
        answer = client.post(
            f"/dashboard/settings/accounts/{account_id}/role", data={"role": "viewer", "csrf_token": csrf}
        )
        assert answer.status_code == 404, answer.text
        assert f"No account with id {account_id}" in answer.text
