"""Benchmark: Web SDK data requests against /users/track carrying the same events.

    .venv/bin/python bench/sdk.py                                   # 2,000 devices, SQLite and PostgreSQL
    .venv/bin/python bench/sdk.py --devices 200 --backend sqlite    # smoke run

Simulates many browsers: each device sends SDK-shaped batches (a session start, 10 custom events,
a purchase, attributes; every third device signs in with `changeUser` in its second batch, which
ends its anonymous session and starts one with the user id). The same events then go through the
`/users/track` use case, in requests of the same size (one device's batch per request, device_id
or external_id + device_id as the SDK implies), on fresh users. Both run in one thread (one core),
one transaction per request, as the HTTP handlers run them. Prints events per second and the
ratio SDK / track. The machine is shared: figures are noisy; run it a few times.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _http import database
from cohorthub.apps import services as apps
from cohorthub.apps.model import App
from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.identity import services as identity
from cohorthub.workspaces import services as workspaces

EVENTS_PER_BATCH = 10


def device_batches(device: int, start: float) -> list[dict[str, Any]]:
    """Two SDK data requests of one device (the second signs in for every third device)."""
    device_id = f"device-{device:08d}"
    s1, s2 = f"{device_id}-s1", f"{device_id}-s2"
    user = f"user-{device}" if device % 3 == 0 else None

    def event(
        name: str, i: int, session: str, data: dict[str, Any], user_id: str | None = None
    ) -> dict[str, Any]:
        out = {"name": name, "time": round(start + i * 0.01, 3), "data": data, "session_id": session}
        return out | ({"user_id": user_id} if user_id else {})

    first = [event("ss", 0, s1, {})]
    first += [
        event("ce", i + 1, s1, {"n": f"viewed_{i % 4}", "p": {"i": i}}) for i in range(EVENTS_PER_BATCH)
    ]
    first.append(event("p", 20, s1, {"pid": "sku-1", "c": "USD", "p": "9.99", "q": 1, "pr": {}}))
    second = [event("se", 30, s1, {"d": 0.3})] if user else []
    second += [event("ss", 31, s2 if user else s1, {}, user)] if user else []
    second += [
        event("ce", 40 + i, s2 if user else s1, {"n": f"clicked_{i % 4}", "p": {}}, user)
        for i in range(EVENTS_PER_BATCH)
    ]
    device = {"browser": "Chrome", "os_version": "Linux", "locale": "en-us", "time_zone": "UTC"}
    return [
        {"api_key": "k", "device_id": device_id, "device": device, "events": first,
         "attributes": [{"country": "ES", "custom": {"plan": "pro"}}]},
        {"api_key": "k", "device_id": device_id, "events": second,
         "attributes": [{"user_id": user, "first_name": "Ana"}] if user else []},
    ]  # fmt: skip


def as_track(batch: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The same events as a /users/track body (sessions have no /users/track form: dropped)."""
    device_id = prefix + batch["device_id"]

    def ids(user: str | None) -> dict[str, Any]:
        return {"external_id": prefix + user, "device_id": device_id} if user else {"device_id": device_id}

    def iso(seconds: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + "Z"

    events, purchases = [], []
    for e in batch["events"]:
        common = {**ids(e.get("user_id")), "time": iso(e["time"]), "_update_existing_only": False}
        if e["name"] == "ce":
            events.append({**common, "name": e["data"]["n"], "properties": e["data"]["p"]})
        elif e["name"] == "p":
            purchases.append({**common, "product_id": "sku-1", "currency": "USD", "price": 9.99})
    attributes = []
    for a in batch["attributes"]:
        standard = {k: v for k, v in a.items() if k not in ("user_id", "custom")}
        attributes.append(
            {**ids(a.get("user_id")), **standard, **a.get("custom", {}), "_update_existing_only": False}
        )
    return {"attributes": attributes, "events": events, "purchases": purchases}


def count_events(batches: list[dict[str, Any]]) -> int:
    """Events (sessions included) in the SDK batches."""
    return sum(len(b["events"]) for b in batches)


def run_sdk(c: Container, app: App, batches: list[dict[str, Any]]) -> float:
    """SDK batches through the data use case; events per second."""
    started = time.perf_counter()
    for body in batches:
        with c.uow() as uow:
            apps.record_sdk_data(
                uow=uow,
                app=app,
                body=body,
                listeners=c.identity_listeners,
                dedup_window=86400.0,
                now=time.time(),
            )
    return count_events(batches) / (time.perf_counter() - started)


def run_track(c: Container, workspace_id: str, batches: list[dict[str, Any]]) -> float:
    """The same batches through /users/track; events per second (counting the SDK's events)."""
    bodies = [as_track(b, "t-") for b in batches]
    started = time.perf_counter()
    for body in bodies:
        with c.uow() as uow:
            identity.track_users(
                uow=uow, workspace_id=workspace_id, body=body, listeners=c.identity_listeners, now=time.time()
            )
    return count_events(batches) / (time.perf_counter() - started)


def bench(backend: str, devices: int) -> None:
    """One backend: SDK batches, then /users/track with the same events, on fresh users."""
    with database(backend) as url:
        c = bootstrap(Settings(database_url=url))
        try:
            with c.uow() as uow:
                ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=time.time())
            with c.uow() as uow:
                app, _ = apps.create_app(uow=uow, workspace_id=ws.id, name="web", now=time.time())
            start = time.time() - 3600
            batches = [b for d in range(devices) for b in device_batches(d, start + d)]
            # first batches of every device, then the second ones: as browsers interleave
            batches = batches[0::2] + batches[1::2]
            sdk = run_sdk(c, app, batches)
            track = run_track(c, ws.id, batches)
            print(
                f"{backend:10} SDK /api/v3/data: {sdk:8,.0f} events/s   /users/track same events: "
                f"{track:8,.0f} events/s   ratio {sdk / track:4.2f}x   ({count_events(batches):,} events, "
                f"{len(batches):,} requests, one core)"
            )
        finally:
            c.close()


def main() -> None:
    """Parse arguments and run each backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000, help="simulated browsers (two requests each)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    for backend in ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]:
        bench(backend, args.devices)


if __name__ == "__main__":
    main()
