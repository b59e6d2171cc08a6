"""Real servers for messaging tests: an aiosmtpd SMTP server and a Currents sink, on loopback."""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller

from cohorthub.cli.sink import Sink
from tests.conftest import free_port


@dataclass
class SmtpSink:
    """Every message the SMTP server accepted: (envelope recipients, parsed message)."""

    refuse: dict[str, str] = field(default_factory=dict)  # address → SMTP reply, e.g. "550 no such user"
    received: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pipelining: bool = True  # offer PIPELINING (RFC 2920) in the EHLO reply
    senders: list[str] = field(default_factory=list)  # each accepted message's envelope sender

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        """The usual EHLO reply, with PIPELINING when offered."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        """Accept a recipient unless told to refuse it."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
            self.senders.append(str(envelope.mail_from))
        return "250 Message accepted for delivery"

    def to(self) -> list[str]:
        """Every recipient of every accepted message."""
        with self.lock:
            return [r for rcpts, _ in self.received for r in rcpts]


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    """A real SMTP server (aiosmtpd) on loopback: (its record, its port)."""
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def currents_sink() -> Iterator[tuple[Sink, str]]:
    """A Currents receiver on loopback: (its record, its URL)."""
    sink = Sink(token="t0ken")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(sink.app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield sink, f"http://127.0.0.1:{port}/currents"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(predicate: Callable[[], bool], timeout: float = 90.0, what: Callable[[], object] = str) -> None:
    """Poll until `predicate()` holds (fail after `timeout` seconds, showing `what()`)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what()}"
        time.sleep(0.05)
