"""A webhook campaign made in the dashboard's form: previewed for a user, test-sent and launched to a real
HTTP receiver on loopback; a refused definition comes back in the form with the error, nothing saved."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cohorthub.bootstrap import Container
from cohorthub.runtimes import start_messaging
from cohorthub.segments import services as segments
from tests.e2e.messaging.conftest import wait_for
from tests.e2e.web.conftest import World, session

SPAIN = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}


class Receiver(ThreadingHTTPServer):
    """Records every request: (method, path, X-Token header, body)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
        assert isinstance(self.server, Receiver)
        self.server.seen.append((self.command, self.path, self.headers.get("x-token") or "", body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=10)


def test_a_webhook_campaign_from_the_form_reaches_the_receiver(
    world: World, container: Container, receiver: Receiver
) -> None:
    with container.uow() as uow:
        draft = segments.SegmentDraft(name="Spain", filter=SPAIN)
        spain = segments.create_segment(
            uow=uow, workspace_id=world.workspace_id, draft=draft, now=container.now()
        )
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook/{{{{${{user_id}}}}}}"
    form = {"name": "Sync", "segment_id": spain.id, "channel": "webhook", "url": url, "method": "PUT",
            "headers": "X-Token: t-{{${user_id}}}", "webhook_body": '{"u": "{{${user_id}}}"}'}  # fmt: skip
    with session(world, "marketer@acme.io") as (client, csrf):
        bad = client.post("/dashboard/campaigns", data={**form, "headers": "no colon", "csrf_token": csrf})
        assert bad.status_code == 400
        assert 'id="form-error">Not saved: webhook.request_headers: line 1: expected Name: value' in bad.text
        assert 'value="Sync"' in bad.text and "no colon</textarea>" in bad.text
        liquid = client.post(
            "/dashboard/campaigns", data={**form, "url": "http://h/{% if", "csrf_token": csrf}
        )
        assert liquid.status_code == 400 and "webhook.url: line 1" in liquid.text
        assert "Sync" not in client.get("/dashboard/campaigns").text

        made = client.post("/dashboard/campaigns", data={**form, "csrf_token": csrf})
        assert made.status_code == 303, made.text
        page = made.headers["location"]
        assert "Send a test request" in client.get(page).text
        preview = client.get(f"{page}/preview", params={"external_id": "u3"}).text
        assert (
            f"PUT {url.split('/hook')[0]}/hook/u3</code>" in preview
            and "&#34;u&#34;: &#34;u3&#34;" in preview
        )
        sent = client.post(f"{page}/test-send", data={"external_id": "u3", "csrf_token": csrf})
        assert sent.status_code == 200 and "Test send: delivered" in sent.text
        assert receiver.seen == [("PUT", "/hook/u3", "t-u3", '{"u": "u3"}')]
        assert client.post(f"{page}/launch", data={"csrf_token": csrf}).status_code == 303
    stop, thread = start_messaging(container)
    try:
        wait_for(lambda: len(receiver.seen) == 6, timeout=60, what=lambda: receiver.seen)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert sorted(path for _, path, _, _ in receiver.seen[1:]) == [f"/hook/u{i}" for i in (1, 3, 5, 7, 9)]
