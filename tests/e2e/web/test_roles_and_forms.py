"""Roles are enforced on the server (a viewer is refused by direct requests, not only by hidden
buttons), every state-changing request needs the session's CSRF token, sign-in is rate-limited,
sign-out ends the session, and accounts are created with `cohorthub user create`."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys

import httpx
import pytest
from playwright.sync_api import Page, expect

from cohorthub.bootstrap import Container
from cohorthub.messaging import services as messaging
from tests.e2e.web.conftest import PASSWORD, World, session, shot, sign_in

WRITES = [
    ("/dashboard/partners/heap/enable", {}),
    ("/dashboard/partners/heap/rotate", {}),
    ("/dashboard/settings/keys", {"name": "k", "permissions": "users.track"}),
    ("/dashboard/settings/accounts", {"email": "x@acme.io", "password": "0123456789ab", "role": "admin"}),
    ("/dashboard/currents", {"kind": "http", "url": "http://127.0.0.1:9/"}),
    ("/dashboard/campaigns", {"name": "C", "from": "a@acme.io", "subject": "s", "body": "b"}),
    ("/dashboard/campaigns/0123456789abcdef/launch", {}),
]


def test_a_viewer_is_refused_every_change_by_direct_requests(world: World, container: Container) -> None:
    with session(world, "viewer@acme.io") as (client, csrf):
        assert client.get("/dashboard/segments").status_code == 200  # a viewer may look
        for path, data in WRITES:
            answer = client.post(path, data={**data, "csrf_token": csrf})
            assert answer.status_code == 403, path
        headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
        body = {"name": "S", "filter": {"and": []}}
        save = client.post("/dashboard/segments/save", headers=headers, json=body)
        assert save.status_code == 403
    with container.uow(readonly=True) as uow:
        assert uow.partners.integration_enabled(world.workspace_id, "heap") is None
        assert [k.name for k in uow.workspaces.list_rest_keys(world.workspace_id)] == ["default"]
        assert uow.segments.all(world.workspace_id) == []


def test_a_marketer_may_change_partners_but_not_keys_or_accounts(world: World) -> None:
    with session(world, "marketer@acme.io") as (client, csrf):
        assert client.post("/dashboard/partners/heap/enable", data={"csrf_token": csrf}).status_code == 200
        for path, data in WRITES[2:4]:
            assert client.post(path, data={**data, "csrf_token": csrf}).status_code == 403, path


def test_changes_without_the_csrf_token_are_refused(world: World, container: Container) -> None:
    with session(world, "admin@acme.io") as (client, csrf):
        assert client.post("/dashboard/partners/heap/enable", data={}).status_code == 403
        assert (
            client.post("/dashboard/partners/heap/enable", data={"csrf_token": csrf + "x"}).status_code == 403
        )
        preview = client.post("/dashboard/segments/preview", json={"filter": {"and": []}})
        assert preview.status_code == 403
    with container.uow(readonly=True) as uow:
        assert uow.partners.integration_enabled(world.workspace_id, "heap") is None


def test_nul_characters_in_forms_are_refused(world: World, container: Container) -> None:
    with httpx.Client(base_url=world.url, follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/signin").text)
        assert token is not None
        nul = {"email": "admin\x00@acme.io", "password": "x\x00", "csrf_token": token[1]}
        assert client.post("/dashboard/signin", data=nul).status_code == 401  # no account can have it
    with session(world, "admin@acme.io") as (client, csrf):
        named = client.post("/dashboard/segments/save", data={"csrf_token": csrf, "name": "S\x00"})
        assert named.status_code == 400 and "must not contain NUL characters" in named.text
    with container.uow(readonly=True) as uow:
        assert uow.conn.exec_driver_sql("SELECT count(*) FROM segments").scalar_one() == 0


def test_sign_in_is_rate_limited_and_sign_out_ends_thesession(world: World) -> None:
    with httpx.Client(base_url=world.url, follow_redirects=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/signin").text)
        assert token is not None
        wrong = {"email": "admin@acme.io", "password": "not the password", "csrf_token": token[1]}
        assert [client.post("/dashboard/signin", data=wrong).status_code for _ in range(5)] == [401] * 5
        limited = client.post("/dashboard/signin", data={**wrong, "password": PASSWORD})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0
    with session(world, "viewer@acme.io") as (client, csrf):
        assert client.post("/dashboard/signout", data={"csrf_token": csrf}).status_code == 303
        assert client.get("/dashboard/partners").status_code == 303  # back to the sign-in page


def test_a_viewer_sees_no_controls_in_the_browser(page: Page, world: World) -> None:
    sign_in(page, world.url, "viewer@acme.io")
    page.goto(f"{world.url}/dashboard/partners/heap")
    expect(page.locator("form[action$='/enable']")).to_have_count(0)
    page.goto(f"{world.url}/dashboard/settings")
    expect(page.get_by_text("Accounts and roles")).to_have_count(0)
    shot(page, "en-viewer-settings")


@pytest.mark.parametrize("role", ["marketer"])
def test_user_create_on_the_command_line(database_url: str, role: str) -> None:
    env = {**os.environ, "COHORTHUB_USER_PASSWORD": PASSWORD, "COHORTHUB_DATABASE_URL": database_url}
    cli = [sys.executable, "-m", "cohorthub.cli.main", "user"]
    made = subprocess.run([*cli, "create", "--email", "Ana@Acme.io", "--role", role, "--json"], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert '"email": "ana@acme.io"' in made.stdout


def test_segment_members_search_explain_and_csv_export(world: World, container: Container) -> None:
    with session(world, "admin@acme.io") as (client, csrf):
        headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
        spain = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
        bad = client.post("/dashboard/segments/save", headers=headers, json={"name": "", "filter": spain})
        assert bad.status_code == 400 and "name" in bad.json()["message"]
        limit = container.settings.max_body_bytes
        too_big = {"name": "x" * limit, "filter": spain}
        huge = client.post("/dashboard/segments/save", headers=headers, json=too_big)
        assert huge.status_code == 413 and str(limit) in huge.json()["message"]
        body = {"name": "Spain", "filter": spain}
        saved = client.post("/dashboard/segments/save", headers=headers, json=body)
        assert saved.status_code == 200
        base = saved.json()["url"]
        csv_rows = client.get(f"{base}/export.csv").text.splitlines()
        assert csv_rows[0] == "braze_id,external_id"
        assert sorted(r.split(",")[1] for r in csv_rows[1:]) == ["u1", "u3", "u5", "u7", "u9"]
        # ids a browser can set (Web SDK changeUser) stay text in a spreadsheet; the API keeps them as stored
        formulas = ["=1+2", "+1", "-1", "@SUM(A1)", '=HYPERLINK("http://x.test","y")']
        rest = {"Authorization": f"Bearer {world.rest_key}"}
        track = {"attributes": [{"external_id": f, "country": "ES"} for f in formulas]}
        assert httpx.post(f"{world.url}/users/track", json=track, headers=rest).status_code == 201
        shown = [r[1] for r in csv.reader(io.StringIO(client.get(f"{base}/export.csv").text))][1:]
        assert sorted(shown) == sorted([*(f"'{f}" for f in formulas), "u1", "u3", "u5", "u7", "u9"])
        sid = base.rstrip("/").rsplit("/", 1)[-1]
        api = httpx.get(f"{world.url}/segments/{sid}/members", params={"format": "csv"}, headers=rest)
        stored = [r[1] for r in csv.reader(io.StringIO(api.text))][1:]
        assert sorted(stored) == sorted([*formulas, "u1", "u3", "u5", "u7", "u9"])
        assert "u3</a>" in client.get(f"{base}/members", params={"q": "u3"}).text
        assert "is not in this segment" in client.get(f"{base}/members", params={"q": "u2"}).text
        explained = client.get(f"{base}/explain", params={"external_id": "u2"}).text
        assert "not in the segment" in explained and "value=ES" in explained


def test_a_canvas_shows_its_flow(world: World, container: Container) -> None:
    mail = {
        "type": "message",
        "channel": "email",
        "email": {"from": "Acme <news@acme.io>", "subject": "Hi", "body": "<p>Hi</p>"},
    }
    canvas = {"name": "Journey", "entry": {"type": "api"}, "steps": [
        {**mail, "id": "hello", "name": "Hello", "next": "wait"},
        {"id": "wait", "name": "Wait a day", "type": "delay", "seconds": 86400, "next": "again"},
        {**mail, "id": "again", "name": "Reminder"},
    ]}  # fmt: skip
    with container.uow() as uow:
        program = messaging.create_program(
            uow=uow, workspace_id=world.workspace_id, kind="canvas", raw=canvas, now=container.now()
        )
    with session(world, "viewer@acme.io") as (client, _):
        listed = client.get("/dashboard/campaigns").text
        assert f'/dashboard/campaigns/{program.id}">Journey</a>' in listed
        flow = client.get(f"/dashboard/campaigns/{program.id}").text
    steps = re.findall(
        r'<li id="step-(\w+)"><strong>([^<]+)</strong> <span class="badge" data-type="(\w+)">', flow
    )
    assert steps == [
        ("hello", "Hello", "message"),
        ("wait", "Wait a day", "delay"),
        ("again", "Reminder", "message"),
    ]
    assert '→ <a href="#step-wait">Wait a day</a>' in flow and "24 h" in flow


def test_forms_where_json_is_expected_and_unbounded_form_fields_are_400s(
    world: World, container: Container
) -> None:
    """Found by posting garbage to every dashboard form: a form body to the builder's JSON endpoints was a
    500 (its body was already read as the form), and a huge `path_count` kept the server busy forever."""
    with session(world, "admin@acme.io") as (client, csrf):
        for path in ("/dashboard/segments/save", "/dashboard/segments/preview"):
            answer = client.post(path, data={"csrf_token": csrf, "name": "S"})
            assert answer.status_code == 400 and "must be JSON" in answer.text, path
        canvas = {"csrf_token": csrf, "canvas_name": "K", "entry_type": "api", "type": "audience_split",
                  "path_count": "9" * 40, "path_name_0": "p"}  # fmt: skip
        refused = client.post("/dashboard/canvases", data=canvas, timeout=10)
        assert refused.status_code == 400 and refused.text.count('name="path_name_') <= 51
        assert client.get("/dashboard/campaigns", timeout=10).status_code == 200  # still answering
    with container.uow(readonly=True) as uow:
        assert uow.conn.exec_driver_sql("SELECT count(*) FROM segments").scalar_one() == 0
