"""`cohorthub sync` against a real cohorthub server: create, change, rename; membership checked after each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from cohorthub.bootstrap import Container
from tests.conftest import LiveServer
from tests.e2e.cohorts.conftest import Api
from tests.integration.cohorts.factories import add_user, make_tenant

EXE = str(Path(sys.executable).with_name("cohorthub"))


def sync(server: LiveServer, api: Api, state: Path, source: Path, name: str) -> dict[str, object]:
    """Run one `cohorthub sync run … --json` as a user would, and return its summary."""
    tenant = api.tenant
    result = subprocess.run(
        [
            EXE, "sync", "run", "--endpoint", server.url, "--partner", "heap",
            "--partner-key", tenant.partner_api_key, "--data-import-key", tenant.client_secret,
            "--cohort-id", "trial-abandoners", "--name", name, "--source", str(source),
            "--state", str(state), "--json",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_sync_three_times_into_a_real_server(
    container: Container, live_server: LiveServer, tmp_path: Path
) -> None:
    tenant = make_tenant(container)
    for external_id in ("u1", "u2", "u3", "u4"):
        add_user(container, tenant.workspace_id, external_id=external_id)
    add_user(container, tenant.workspace_id, devices=["dev-anon"])
    add_user(container, tenant.workspace_id, aliases=[("email", "a@x.com")])
    state, source = tmp_path / "state.sqlite", tmp_path / "members.csv"
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        api = Api(http, tenant)

        source.write_text(
            "id_type,id\nexternal_id,u1\nexternal_id,u2\ndevice_id,dev-anon\nexternal_id,ghost\n"
        )
        first = sync(live_server, api, state, source, "Trial abandoners")
        assert (first["adds"], first["removes"], first["name_sent"]) == (4, 0, True)
        assert api.members("trial-abandoners") == {"u1", "u2", _anon(api)}
        assert [c["name"] for c in api.cohorts()] == ["Trial abandoners"]

        source.write_text("id_type,id\nexternal_id,u1\nexternal_id,u3\nalias:email,a@x.com\nexternal_id,u3\n")
        second = sync(live_server, api, state, source, "Trial abandoners")
        assert (second["adds"], second["removes"], second["name_sent"]) == (2, 3, False)
        assert api.members("trial-abandoners") == {"u1", "u3", _alias_user(api)}

        third = sync(live_server, api, state, source, "Trial abandoners v2")
        assert (third["adds"], third["removes"], third["name_sent"]) == (0, 0, True)
        cohorts = api.cohorts()
        assert [(c["cohort_id"], c["name"]) for c in cohorts] == [("trial-abandoners", "Trial abandoners v2")]
        assert api.members("trial-abandoners") == {"u1", "u3", _alias_user(api)}


def _anon(api: Api) -> str:
    return _lookup(api, "device_id", "dev-anon")


def _alias_user(api: Api) -> str:
    return _lookup(api, "user_aliases", [{"alias_label": "email", "alias_name": "a@x.com"}])


def _lookup(api: Api, field: str, value: object) -> str:
    response = api.http.post("/users/export/ids", json={field: value}, headers=api.auth())
    assert response.status_code in (200, 201), response.text
    users = response.json()["users"]
    assert len(users) == 1, users
    braze_id: str = users[0]["braze_id"]
    return braze_id
