"""SMTP servers that misbehave: a connection dropped before the server accepted the message is retried once
on a new connection (the server never said 250, so it does not have it); one that keeps failing or hangs
is recorded as failed, never as delivered."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpTransport
from cohorthub.messaging.ports import Outcome, OutgoingEmail
from tests.conftest import free_port
from tests.e2e.messaging.conftest import SmtpSink

MESSAGE = OutgoingEmail(sender="a@shop.test", to="u@example.com", data=b"Subject: x\r\n\r\nhello\r\n")


class FlakyServer:
    """Speaks just enough SMTP; `behaviour(n)` for the n-th connection: ok, drop (after the data), hang,
    drop-second (takes the first message, drops the connection after the second one's data), or
    drip-greeting and drip (a line of a reply that never ends every 0.2 s for 10 s: the greeting, the
    answer to the data)."""

    def __init__(self, behaviour: list[str], *, pipelining: bool = False) -> None:
        self.behaviour = behaviour
        self.pipelining = pipelining
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for n in range(len(self.behaviour)):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._session(conn, self.behaviour[n])

    def _session(self, conn: socket.socket, mode: str) -> None:
        if mode == "drip-greeting":
            self._drip(conn, b"220-wait\r\n")
            return
        conn.sendall(b"220 flaky\r\n")
        buffer, in_data = b"", False
        while chunk := conn.recv(65536):
            buffer += chunk
            while True:
                if in_data:
                    end = buffer.find(b"\r\n.\r\n")
                    if end < 0:
                        break
                    buffer, in_data = buffer[end + 5 :], False
                    if mode == "drop" or (mode == "drop-second" and self.accepted == 1):
                        return  # the connection goes away before the server's answer
                    if mode == "hang":
                        threading.Event().wait(3)
                        return
                    if mode == "drip":
                        self._drip(conn, b"250-wait\r\n")
                        return
                    self.accepted += 1
                    conn.sendall(b"250 OK\r\n")
                    continue
                line, sep, rest = buffer.partition(b"\r\n")
                if not sep:
                    break
                buffer = rest
                verb = line[:4].upper()
                if verb == b"DATA":
                    in_data = True
                    conn.sendall(b"354 go on\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                elif verb == b"EHLO" and self.pipelining:
                    conn.sendall(b"250-flaky\r\n250 PIPELINING\r\n")
                else:
                    conn.sendall(b"250 OK\r\n")

    @staticmethod
    def _drip(conn: socket.socket, line: bytes) -> None:
        """`line` every 0.2 s for 10 s (never idle for a whole timeout of the client), until it goes."""
        for _ in range(50):
            try:
                conn.sendall(line)
            except OSError:
                return
            time.sleep(0.2)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=[False, True], ids=["plain", "pipelining"])
def pipelining(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def server(request: pytest.FixtureRequest, pipelining: bool) -> Iterator[FlakyServer]:
    s = FlakyServer(request.param, pipelining=pipelining)
    yield s
    s.close()


@pytest.mark.parametrize("server", [["drop", "ok"]], indirect=True)
def test_a_dropped_connection_is_retried_once_and_delivered_once(server: FlakyServer) -> None:
    transport = SmtpTransport(SmtpConfig(port=server.port, timeout=2))
    [outcome] = transport.send([MESSAGE])
    transport.close()
    assert outcome.state == "delivered" and server.accepted == 1 and outcome.retries == 1


@pytest.mark.parametrize("server", [["drop", "drop"], ["hang", "hang"]], indirect=True)
def test_a_server_that_keeps_failing_is_a_failure_not_a_delivery(server: FlakyServer) -> None:
    transport = SmtpTransport(SmtpConfig(port=server.port, timeout=0.5))
    [outcome] = transport.send([MESSAGE])
    transport.close()
    assert outcome.state == "failed" and outcome.detail and server.accepted == 0


@pytest.mark.parametrize("server", [["drip-greeting"] * 2, ["drip"] * 2], indirect=True)
def test_a_server_that_drips_a_reply_is_a_failure_within_the_timeout(server: FlakyServer) -> None:
    """A reply a line at a time, never idle for the whole timeout, holds a message for the timeout (twice:
    it is retried once on a new connection), not for as long as the server keeps dripping."""
    transport = SmtpTransport(SmtpConfig(port=server.port, timeout=1))
    started = time.monotonic()
    [outcome] = transport.send([MESSAGE])
    took = time.monotonic() - started
    transport.close()
    assert (outcome.state, outcome.retries, server.accepted) == ("failed", 1, 0)
    assert took < 8  # dripping on would take 20 s (10 s a connection)


def test_refusals_are_bounces_and_the_connection_serves_the_next_message(pipelining: bool) -> None:
    sink, port = SmtpSink(pipelining=pipelining), free_port()
    sink.refuse = {"gone@example.com": "550 5.1.1 no such user", "full@example.com": "452 4.2.2 mailbox full"}
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        transport = SmtpTransport(SmtpConfig(port=port, timeout=5))
        data = b"Subject: x\r\n\r\n.starts with a dot\r\n"
        outcomes = transport.send(
            [OutgoingEmail("a@shop.test", f"{name}@example.com", data) for name in ("a", "gone", "full", "b")]
        )
        transport.close()
    finally:
        controller.stop()
    assert [o.state for o in outcomes] == ["delivered", "bounced", "soft_bounced", "delivered"]
    assert outcomes[1].detail == "550 5.1.1 no such user" and outcomes[2].status == 452
    assert sink.to() == ["a@example.com", "b@example.com"]
    assert sink.received[0][1].get_payload() == ".starts with a dot\r\n"  # dot-stuffed on the wire


@pytest.mark.parametrize("server", [["drop-second", "ok"]], indirect=True)
def test_a_connection_lost_mid_batch_resends_only_the_message_in_flight(server: FlakyServer) -> None:
    """Back-to-back messages (a message's content and the next one's commands in one write): the message
    whose content was on the wire is sent again once (a Retry); those not yet sent go out normally."""
    transport = SmtpTransport(SmtpConfig(port=server.port, timeout=2))
    messages = [OutgoingEmail("a@shop.test", f"u{n}@example.com", MESSAGE.data) for n in range(4)]
    outcomes = transport.send(messages)
    transport.close()
    assert [o.state for o in outcomes] == ["delivered"] * 4 and server.accepted == 4
    assert [o.retries for o in outcomes] == [0, 1, 0, 0]


def test_a_refused_connection_is_a_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = SmtpTransport(SmtpConfig(port=port, timeout=0.5))
    [outcome] = transport.send([MESSAGE])
    assert outcome.state == "failed" and "Connection" in (outcome.detail or "")


@pytest.mark.parametrize("security", ["none", "starttls"])
def test_a_batch_to_a_server_that_is_down_fails_quickly(security: str) -> None:
    """Each message tries two connections, each refused at once: a batch costs milliseconds, not the ~45 ms
    per message that building a TLS context for every connection took (23 s for a batch of 500)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = SmtpTransport(SmtpConfig(port=port, security=security, timeout=0.5))
    started = time.monotonic()
    outcomes = transport.send([MESSAGE] * 200)
    took = time.monotonic() - started
    assert {(o.state, o.retries) for o in outcomes} == {("failed", 1)}
    assert took < 5  # a TLS context per connection took ~9 s for 200


def test_a_transport_used_by_two_threads_at_once_keeps_each_message_to_its_own_recipient(
    pipelining: bool,
) -> None:
    """A test send from the API or the dashboard goes through the worker's connections while a campaign is
    on the wire: each message still goes to its own recipient only, and each gets its own answer."""
    sink, port = SmtpSink(pipelining=pipelining), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    transport = SmtpTransport(SmtpConfig(port=port, timeout=5))
    results: dict[str, list[Outcome]] = {}

    def send(name: str, count: int, size: int) -> None:
        for n in range(0, count, size):
            batch = [
                OutgoingEmail(
                    "a@shop.test", f"{name}{i}@example.com", b"To: %s%d\r\n\r\nhi\r\n" % (name.encode(), i)
                )
                for i in range(n, n + size)
            ]
            results.setdefault(name, []).extend(transport.send(batch))

    try:
        threads = [threading.Thread(target=send, args=("campaign", 400, 50)),
                   threading.Thread(target=send, args=("test", 40, 1))]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        transport.close()
    finally:
        controller.stop()
    assert {name: {o.state for o in outcomes} for name, outcomes in results.items()} == {
        "campaign": {"delivered"},
        "test": {"delivered"},
    }
    assert all(len(rcpts) == 1 and m["To"] == rcpts[0].split("@")[0] for rcpts, m in sink.received)
    assert len(sink.received) == 440
