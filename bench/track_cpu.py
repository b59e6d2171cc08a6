"""Benchmark: CPU time of one `/users/track` request in process, the whole ASGI app in one thread.

    .venv/bin/python bench/track_cpu.py                      # SQLite, 75 attributes + 75 events
    .venv/bin/python bench/track_cpu.py --no-events --profile   # and a profile (pip install pyinstrument)

The app is driven directly (no sockets; the worker-thread hop runs inline) on a fresh SQLite
database: `--warmup` requests create users, then `--requests` measured ones create more (new) and
the same number update existing users. CPU time (`time.process_time`, the least mean of blocks of
25 requests) depends much less on how busy the machine is than throughput does. The baseline is
decoding the same bodies' JSON alone.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import msgspec

import users_track
from cohorthub.api.app import create_app
from cohorthub.bootstrap import bootstrap
from cohorthub.config import Settings
from cohorthub.workspaces import services as workspaces


def bodies(start: int, count: int, batch: int, round_: int, events: bool) -> list[bytes]:
    """`count` requests naming users from `start` on (a multiple of `batch`), as bench/users_track.py's."""
    first = start // batch
    return users_track.bodies((first + count) * batch, batch, round_, events)[first:]


async def _inline(fn: Callable[[], Any], *_args: Any, **_kwargs: Any) -> Any:
    return fn()


async def post(app: Any, body: bytes, key: str) -> int:
    """POST one body to the ASGI app; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/users/track",
        "raw_path": b"/users/track",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {key}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def cpu_per_request(run: Callable[[bytes], Any], requests: list[bytes], block: int = 25) -> float:
    """CPU seconds of `run(body)` per request: the least mean of a block of `block` requests.

    The least is the steadiest figure on a shared machine (other processes only ever add to it).
    """
    means = []
    for at in range(0, len(requests), block):
        start = time.process_time()
        for body in requests[at : at + block]:
            run(body)
        means.append((time.process_time() - start) / len(requests[at : at + block]))
    return min(means)


def main() -> None:
    """Warm up, then measure new users and updates; print ms of CPU per request and the ratio."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warmup", type=int, default=400, help="requests before measuring")
    parser.add_argument("--requests", type=int, default=200, help="measured requests (new, then updates)")
    parser.add_argument("--batch", type=int, default=75)
    parser.add_argument("--no-events", action="store_true", help="attributes only")
    parser.add_argument(
        "--profile", action="store_true", help="a profile of the measured requests (needs pyinstrument)"
    )
    args = parser.parse_args()
    events = not args.no_events
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]  # one thread: profilers see it all
    with tempfile.TemporaryDirectory() as tmp:
        c = bootstrap(Settings(database_url=f"sqlite:///{Path(tmp) / 'cpu.sqlite'}"))
        with c.uow() as uow:
            key = workspaces.create_workspace(uow=uow, name="bench", now=time.time())[1].key
        app = create_app(c)
        loop = asyncio.new_event_loop()

        def run(body: bytes) -> None:
            status = loop.run_until_complete(post(app, body, key))
            assert status == 201, status

        batch, n = args.batch, args.requests
        for body in bodies(0, args.warmup, batch, 0, events):
            run(body)
        first = args.warmup * batch
        new = bodies(first, n, batch, 0, events)
        again = bodies(first, n, batch, 1, events)
        decoder = msgspec.json.Decoder()
        base = cpu_per_request(decoder.decode, new)
        profiler = None
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002)
            profiler.start()
        new_cpu = cpu_per_request(run, new)
        upd_cpu = cpu_per_request(run, again)
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=True, color=False, show_all=False))
        c.close()
        loop.close()
    print(f"track CPU per request ({batch} attributes{' + events' if events else ''}, SQLite, one thread):")
    print(f"  baseline (JSON decode only): {base * 1e3:7.3f} ms")
    for name, cpu in (("new users", new_cpu), ("updates", upd_cpu)):
        print(f"  {name:10} {cpu * 1e3:7.3f} ms   ratio to baseline {cpu / base:6.1f}")


if __name__ == "__main__":
    main()
