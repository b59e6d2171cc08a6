"""`cohorthub currents-sink`: a Custom HTTP Currents receiver that appends events to JSONL.

It behaves as a careful receiver should (protocol §5.2, TV-32…TV-41): it checks the bearer
token first (401 on mismatch, even for an empty batch), requires `Braze-Currents-Version`,
accepts unknown event types and fields, dedupes on event `id`, and answers 2xx only once
the events are written. It can also fail on purpose, so the retry rules can be watched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated

import msgspec
import typer
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cohorthub.keys import same_secret


class _Body(msgspec.Struct):
    events: list[msgspec.Raw]


class _Event(msgspec.Struct):
    id: str


_body = msgspec.json.Decoder(_Body)
_event = msgspec.json.Decoder(_Event)


@dataclass
class Sink:
    """The receiver's settings (mutable, so a test can change them between phases) and counts."""

    out: Path | None = None
    token: str | None = None
    fail_status: int | None = None
    fail_times: int = 0
    retry_after: str | None = None
    delay: float = 0.0
    reject_ids: set[str] = field(default_factory=set)
    max_events: int | None = None
    seen: set[str] = field(default_factory=set)
    events: list[bytes] = field(default_factory=list)
    requests: int = 0
    received: int = 0
    statuses: list[int] = field(default_factory=list)
    keep_in_memory: bool = True
    _file: IO[bytes] | None = None

    def app(self) -> Starlette:
        """The ASGI app: POST any path to deliver, GET /stats for the counts."""
        return Starlette(
            routes=[
                Route("/stats", self._stats, methods=["GET"]),
                Route("/{path:path}", self._receive, methods=["POST"]),
            ]
        )

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, object]]:
        """Status and JSON answer for one request (pure, apart from the counts and the file)."""
        self.requests += 1
        if self.token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not same_secret(given.strip(), self.token):
                return 401, {"message": "Invalid bearer token"}
        if headers.get("braze-currents-version") != "1":
            return 400, {"message": "Missing or unsupported Braze-Currents-Version header"}
        if self.fail_times > 0 and self.fail_status is not None:
            self.fail_times -= 1
            return self.fail_status, {"message": "failing on purpose"}
        if not body.strip():
            return 200, {"received": 0}
        try:
            events = _body.decode(body).events
            ids = [_event.decode(raw).id for raw in events]
        except (msgspec.DecodeError, RecursionError) as exc:
            return 400, {"message": f"Malformed Currents batch: {exc}"}
        if self.max_events is not None and len(events) > self.max_events:
            return 413, {"message": f"More than {self.max_events} events in one request"}
        if self.reject_ids.intersection(ids):
            return 400, {"message": "Batch holds an event this receiver rejects"}
        self._store(events, ids)
        return 200, {"received": len(events)}

    def _store(self, events: list[msgspec.Raw], ids: list[str]) -> None:
        fresh = []
        for raw, event_id in zip(events, ids, strict=True):
            self.received += 1
            if event_id not in self.seen:
                self.seen.add(event_id)
                fresh.append(bytes(raw))
        if self.keep_in_memory:
            self.events.extend(fresh)
        if self.out is not None and fresh:
            if self._file is None:
                self._file = self.out.open("ab")
            self._file.write(b"\n".join(fresh) + b"\n")
            self._file.flush()

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        status, payload = self.answer({k.lower(): v for k, v in request.headers.items()}, body)
        self.statuses.append(status)
        headers = {"Retry-After": self.retry_after} if status >= 400 and self.retry_after else None
        return JSONResponse(payload, status_code=status, headers=headers)

    async def _stats(self, _request: Request) -> Response:
        return JSONResponse({"requests": self.requests, "received": self.received, "unique": len(self.seen)})


def currents_sink(
    port: Annotated[int, typer.Option(help="TCP port.")] = 9000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    token: Annotated[str | None, typer.Option(help="Expected bearer token (401 otherwise).")] = None,
    out: Annotated[Path, typer.Option(help="JSONL file the events are appended to.")] = Path("events.jsonl"),
    fail_status: Annotated[int | None, typer.Option(help="Answer this status on purpose…")] = None,
    fail_times: Annotated[int, typer.Option(help="…for this many requests.")] = 0,
    retry_after: Annotated[str | None, typer.Option(help="Retry-After header on failures.")] = None,
    delay: Annotated[float, typer.Option(help="Seconds to wait before answering.")] = 0.0,
    reject_id: Annotated[
        list[str] | None, typer.Option(help="Answer 400 to batches holding this event id.")
    ] = None,
    max_events: Annotated[int | None, typer.Option(help="Answer 413 to larger batches.")] = None,
) -> None:
    """Receive Currents batches on loopback and append each new event to a JSONL file."""
    sink = Sink(
        out=out,
        token=token,
        fail_status=fail_status,
        fail_times=fail_times,
        retry_after=retry_after,
        delay=delay,
        reject_ids=set(reject_id or []),
        max_events=max_events,
        keep_in_memory=False,
    )
    if out.exists():
        with out.open("rb") as existing:
            sink.seen.update(_event.decode(line).id for line in existing if line.strip())
    typer.echo(f"currents-sink listening on http://{host}:{port}/ → {out}", err=True)
    uvicorn.run(sink.app(), host=host, port=port, log_level="warning", access_log=False)
