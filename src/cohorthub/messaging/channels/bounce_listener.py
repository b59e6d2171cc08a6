"""An SMTP server that receives bounces (DSNs) for the return paths of sent messages (aiosmtpd).

Point the MX of the return paths' domain (or a mail system's forwarding rule) at it. It takes every
message (`MAIL FROM:<>`, as DSNs are sent, or any other) and hands each, with its envelope
recipients, to `record`; what cannot be matched to a message is ignored and counted there, never
refused, so the listener tells nothing about which addresses exist.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller

from cohorthub.messaging.bounces import BounceResult

log = logging.getLogger("cohorthub.messaging.bounces")
#: The largest message taken (a DSN quotes the original message, usually in part).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

Record = Callable[[bytes, list[str]], BounceResult]


class _Handler:
    def __init__(self, record: Record) -> None:
        self._record = record
        self.results: list[BounceResult] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        rcpts = [str(r) for r in envelope.rcpt_tos]
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, self._record, raw, rcpts)
        except Exception:
            log.exception("a bounce could not be recorded")
            return "451 4.3.0 could not record the report; try again later"
        log.info("bounce for %s: %s (%s)", ", ".join(rcpts), result.outcome, result.reason)
        return "250 OK"


class BounceListener:
    """The SMTP server on `host:port`, in a background thread (`start`, `stop`)."""

    def __init__(self, record: Record, *, host: str, port: int) -> None:
        self._handler = _Handler(record)
        self._controller = Controller(
            self._handler,
            hostname=host,
            port=port,
            data_size_limit=MAX_MESSAGE_BYTES,
        )

    def start(self) -> None:
        """Listen."""
        self._controller.start()

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()
