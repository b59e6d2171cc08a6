"""Managing campaigns over HTTP and the CLI: errors with paths, lifecycle conflicts, permissions, preview."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from cohorthub.bootstrap import Container
from cohorthub.cli.main import app
from cohorthub.workspaces import services as workspaces
from tests.conftest import LiveServer

EMAIL = {"from": "news@shop.test", "subject": "Hi {{${first_name}}}", "body": "<p>x</p>"}
CAMPAIGN = {"name": "Hello", "channel": "email", "email": EMAIL, "delivery": {"type": "api"}}


def test_http_lifecycle_errors_and_permissions(container: Container, live_server: LiveServer) -> None:
    with container.uow() as uow:
        ws, key = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    with container.uow() as uow:
        reader = workspaces.create_rest_key(
            uow=uow, workspace_id=ws.id, name="r", permissions=["campaigns.read"], now=time.time()
        )
    auth = {"Authorization": f"Bearer {key.key}"}
    with httpx.Client(base_url=live_server.url, headers=auth) as http:
        http.post("/users/track", json={"attributes": [{"external_id": "ana", "first_name": "Ana",
                                                        "email": "ana@example.com"}]})  # fmt: skip
        bad = http.post("/messaging/campaigns", json={**CAMPAIGN, "email": {**EMAIL, "subject": "{% if %}"}})
        assert (bad.status_code, bad.json()["message"]) == (
            400,
            "email.subject: line 1, column 4: missing expression",
        )
        bad = http.post("/messaging/campaigns", json={**CAMPAIGN, "audience": {"segment_ids": ["nope"]}})
        assert bad.status_code == 400 and bad.json()["message"].startswith("audience:")
        assert http.get("/messaging/campaigns").json()["items"] == []  # nothing was stored
        denied = http.post(
            "/messaging/campaigns", json=CAMPAIGN, headers={"Authorization": f"Bearer {reader.key}"}
        )
        assert denied.status_code == 403
        cid = http.post("/messaging/campaigns", json=CAMPAIGN).json()["id"]
        preview = http.post(f"/messaging/campaigns/{cid}/preview", json={"external_id": "ana"}).json()
        assert (preview["size"], preview["reachable"], preview["rendered"]["subject"]) == (1, 1, "Hi Ana")
        assert http.post(f"/messaging/campaigns/{cid}/resume").status_code == 409
        assert http.post(f"/messaging/campaigns/{cid}/launch").json()["status"] == "active"
        assert http.post(f"/messaging/campaigns/{cid}/launch").status_code == 409
        assert http.post(f"/messaging/campaigns/{cid}/pause").json()["status"] == "paused"
        trigger = http.post("/campaigns/trigger/send", json={"campaign_id": cid, "broadcast": True})
        assert (trigger.status_code, trigger.json()["message"]) == (400, "Invalid Campaign ID")
        assert http.post(f"/messaging/campaigns/{cid}/resume").json()["status"] == "active"
        assert http.post(f"/messaging/campaigns/{cid}/archive").json()["status"] == "archived"
        assert http.get("/messaging/campaigns").json()["items"] == []
        assert (
            http.get("/messaging/campaigns", params={"include_archived": "true"}).json()["items"][0]["id"]
            == cid
        )
        assert http.get("/messaging/campaigns/nope").status_code == 404
        paths = http.get("/openapi.json").json()["paths"]
        assert "/campaigns/trigger/send" in paths and "/messaging/campaigns" in paths


def test_cli_create_launch_stats(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    ws = json.loads(
        runner.invoke(app, ["workspace", "create", "Acme", "--database", database_url, "--json"]).stdout
    )
    spec = tmp_path / "campaign.json"
    spec.write_text(json.dumps(CAMPAIGN))
    base = ["--workspace", ws["workspace_id"], "--database", database_url]
    created = runner.invoke(app, ["campaigns", "create", *base, str(spec), "--json"])
    assert created.exit_code == 0, created.stdout
    cid = json.loads(created.stdout)["id"]
    assert (
        json.loads(runner.invoke(app, ["campaigns", "launch", *base, cid, "--json"]).stdout)["status"]
        == "active"
    )
    stats = json.loads(runner.invoke(app, ["campaigns", "stats", *base, cid]).stdout)
    assert (stats["status"], stats["sent"]) == ("active", 0)
    loop = [{"id": "a", "type": "delay", "seconds": 1, "next": "a"}]
    spec.write_text(json.dumps({"name": "Loop", "entry": {"type": "api"}, "steps": loop}))
    refused = runner.invoke(app, ["canvas", "create", *base, str(spec)])
    assert refused.exit_code == 3 and "cycle: a → a" in refused.stderr
    spec.write_bytes(b"\x00\xff")
    bad = ((spec, "not UTF-8 text (invalid byte at offset 1)"), (tmp_path / "gone", "cannot be read"))
    for path, why in bad:
        unreadable = runner.invoke(app, ["canvas", "create", *base, str(path)])
        assert unreadable.exit_code == 3 and why in unreadable.stderr and "Traceback" not in unreadable.output


def test_tracking_links_on_a_fresh_server_answer_at_once(live_server: LiveServer) -> None:
    """The first link followed after a start creates the signing secret: never inside its own transaction."""
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        pixel = http.get("/t/o/1/forged")  # a pixel always answers with the image, and records nothing
        assert (pixel.status_code, pixel.headers["content-type"]) == (200, "image/gif")
        for path in ("/t/c/1/forged?u=https://x.test/", "/t/u/1/forged"):
            assert http.get(path).status_code == 404, path
        assert http.post("/t/u/1/forged").status_code == 404
        for bad in ("²", "99999999999999999999999", "-1"):  # not a ledger row: unknown, never a 500
            assert http.get(f"/t/o/{bad}/x").status_code == 404, bad
        for sig in ("%F0%96%AE%B7%C2%91", "%C3%A9t%C3%A9"):  # a signature that is not ASCII: a 404 too
            assert http.get(f"/t/c/7/{sig}?u=https://x.test/").status_code == 404, sig
            assert http.get(f"/t/u/7/{sig}").status_code == 404, sig


def test_nul_characters_and_unicode_digits_are_400s_on_both_stores(
    container: Container, live_server: LiveServer
) -> None:
    with container.uow() as uow:
        _, key = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key.key}"}) as http:
        named = http.post("/messaging/campaigns", json={**CAMPAIGN, "name": "x\x00"})
        assert (named.status_code, named.json()["message"]) == (400, "name: must not contain NUL characters")
        body = http.post("/messaging/campaigns", json={**CAMPAIGN, "email": {**EMAIL, "body": "<p>\x00</p>"}})
        assert body.json()["message"] == "email.body: must not contain NUL characters"
        assert http.get("/messaging/campaigns").json()["items"] == []  # nothing was stored
        campaign = http.post("/messaging/campaigns", json=CAMPAIGN).json()["id"]
        assert http.post(f"/messaging/campaigns/{campaign}/launch").status_code == 200
        trigger = {"campaign_id": campaign, "recipients": [{"external_user_id": "a\x00"}]}
        sent = http.post("/campaigns/trigger/send", json=trigger)
        assert sent.status_code == 400
        assert sent.json()["errors"] == ["recipients[0].external_user_id must not contain NUL characters"]
        page = http.get("/campaigns/list", params={"page": "²"})
        assert page.status_code == 400
        assert page.json()["errors"] == ["page: must be an integer from 0 to 2147483647"]
        delayed = [{"id": "a", "type": "delay", "until": "²:00"}]
        canvas = {"name": "C", "entry": {"type": "api"}, "steps": delayed}
        delay = http.post("/messaging/canvases", json=canvas)
        assert delay.status_code == 400
        assert delay.json()["message"].startswith("steps[0]")


def test_preview_and_test_send_refuse_ids_and_addresses_no_store_can_look_up(
    container: Container, live_server: LiveServer
) -> None:
    """An `external_id` that is not a string (a number, a list, one with NUL) is a 400 on both stores, not
    a 500 from the database; a test send to something that is not an e-mail address (CR LF included) fails
    without a word reaching the SMTP server."""
    with container.uow() as uow:
        _, key = workspaces.create_workspace(uow=uow, name="Acme", now=time.time())
    with httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key.key}"}) as http:
        campaign = http.post("/messaging/campaigns", json=CAMPAIGN).json()["id"]
        for bad in (5, 10**30, [1], {"a": 1}, "a\x00"):
            for action, body in (("preview", {}), ("test-send", {"address": "t@shop.test"})):
                answer = http.post(
                    f"/messaging/campaigns/{campaign}/{action}", json={**body, "external_id": bad}
                )
                assert answer.status_code == 400, (action, bad, answer.text)
                assert answer.json()["message"].startswith("external_id"), answer.text
        for bad in ([1], "x", 5):
            answer = http.post(f"/messaging/campaigns/{campaign}/preview", json={"trigger_properties": bad})
            assert (answer.status_code, answer.json()["message"]) == (
                400,
                "trigger_properties must be an object",
            )
        for address in ("not an address", "", "a@b.test>\r\nRCPT TO:<evil@y.test"):
            sent = http.post(f"/messaging/campaigns/{campaign}/test-send", json={"address": address}).json()
            assert (sent["state"], sent["detail"]) == ("failed", f"not an e-mail address: {address!r}")
