"""The HTTP sender against real servers on loopback: keep-alive, a connection the server closed,
proxies from the environment, and the answer's status, Retry-After and error text."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cohorthub.currents.transport import HttpSender
from cohorthub.currents.wire import batch_body, request_headers
from tests.conftest import EndlessAnswer, RawHttpServer, free_port
from tests.integration.currents.conftest import SinkServer

BODY = batch_body([b'{"id":"e1"}', b'{"id":"e2"}'])
HEADERS = {
    "Content-Type": "application/json",
    "Braze-Currents-Version": "1",
    "Authorization": "Bearer s3cr3t",
}


class OneShotServer(RawHttpServer):
    """Answers one request per connection with 200, then closes it without saying so."""

    def __init__(self) -> None:
        super().__init__("/braze")


@pytest.fixture
def sender() -> Iterator[HttpSender]:
    s = HttpSender(timeout=5)
    yield s
    s.close()


def test_requests_share_a_keep_alive_connection(sink: SinkServer, sender: HttpSender) -> None:
    for _ in range(3):
        assert sender.send(sink.url, HEADERS, BODY).status == 200
    assert sink.sink.requests == 3 and sink.sink.received == 6
    assert sum(len(idle) for idle in sender._idle.values()) == 1  # one connection, reused


def test_a_connection_the_server_closed_is_replaced_and_the_request_sent_once_more(
    sender: HttpSender,
) -> None:
    server = OneShotServer()
    try:
        assert sender.send(server.url, HEADERS, BODY).status == 200
        assert sender.send(server.url, HEADERS, BODY).status == 200  # the kept connection was dead
        assert server.requests == 2
    finally:
        server.close()


def test_error_answers_carry_status_retry_after_and_text(sink: SinkServer, sender: HttpSender) -> None:
    sink.sink.fail_status, sink.sink.fail_times, sink.sink.retry_after = 503, 1, "120"
    result = sender.send(sink.url, HEADERS, BODY)
    assert (result.status, result.retry_after) == (503, "120")
    assert result.error is not None and "failing on purpose" in result.error
    assert sender.send(sink.url, request_headers(None), BODY).status == 401  # token checked first


def test_a_refused_connection_is_a_connect_error(sender: HttpSender) -> None:
    result = sender.send(f"http://127.0.0.1:{free_port()}/braze", HEADERS, BODY)
    assert result.status is None and result.error is not None and result.error.startswith("ConnectError")


def test_a_proxy_from_the_environment_is_honoured(sink: SinkServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = HttpSender(timeout=5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bypassed = HttpSender(timeout=5)
    try:
        result = proxied.send(sink.url, HEADERS, BODY)
        assert result.status is None and result.error is not None  # went to the (dead) proxy
        assert sink.sink.requests == 0
        assert bypassed.send(sink.url, HEADERS, BODY).status == 200  # NO_PROXY: straight to the sink
    finally:
        proxied.close()
        bypassed.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://\x0f\xaai/braze",  # a host with a control character (stored before URLs were checked)
        "http://127.0.0.1:abc/braze",
        "http://heap..example/braze",
    ],
)
def test_a_url_no_request_can_be_made_to_is_a_failed_attempt(sender: HttpSender, url: str) -> None:
    result = sender.send(url, HEADERS, BODY)
    assert result.status is None
    assert result.error is not None and result.error.startswith("InvalidURL")


def test_a_path_with_a_control_character_is_refused_before_it_is_sent(
    sink: SinkServer, sender: HttpSender
) -> None:
    result = sender.send(sink.url + "/a\x01b", HEADERS, BODY)
    assert result.status is None and result.error is not None and result.error.startswith("InvalidURL")
    assert sender.send(sink.url, HEADERS, BODY).status == 200  # the sender goes on working
    assert sink.sink.requests == 1


def test_a_non_ascii_path_and_query_are_sent_percent_encoded(sink: SinkServer, sender: HttpSender) -> None:
    result = sender.send(sink.url + "/\u00e9v\u00e9nements?source=caf\u00e9", HEADERS, BODY)
    assert result.status == 200 and sink.sink.received == 2


@pytest.mark.parametrize("status", [200, 503])
@pytest.mark.parametrize("route", ["direct", "httpx"])
def test_an_endless_answer_is_read_only_so_far(sender: HttpSender, status: int, route: str) -> None:
    """An endpoint that streams its answer without end costs a closed connection, not the
    worker's memory: the status counts, the first bytes are the error's text."""
    server = EndlessAnswer(status, total=512 << 20)  # 512 MiB, were it all read
    try:
        url = server.url + ("/\u00e9" if route == "httpx" else "")  # a non-ASCII path goes through httpx
        result = sender.send(url, HEADERS, BODY)
        assert server.done.wait(10)
    finally:
        server.close()
    assert result.status == status
    assert (result.error is None) if status == 200 else (result.error == "x" * 500)
    assert server.sent < 64 << 20  # the client stopped reading (and closed) long before the end
    assert not any(sender._idle.values())  # that connection is not kept


def test_an_answer_that_drips_is_read_until_the_timeout_then_dropped() -> None:
    server = EndlessAnswer(200, total=400, piece=1, pause=0.05)  # 20 s, were it all read
    sender = HttpSender(timeout=1)
    try:
        assert sender.send(server.url, HEADERS, BODY).status == 200
        assert server.done.wait(10)
    finally:
        sender.close()
        server.close()
    assert server.sent < 400


def test_a_short_answer_keeps_its_connection(sink: SinkServer, sender: HttpSender) -> None:
    sink.sink.fail_status, sink.sink.fail_times = 503, 1
    assert sender.send(sink.url, HEADERS, BODY).status == 503
    assert sender.send(sink.url, HEADERS, BODY).status == 200
    assert sum(len(idle) for idle in sender._idle.values()) == 1  # read to its end: the connection is kept
