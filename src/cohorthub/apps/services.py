"""SDK app use cases: create apps, allow origins, authenticate SDK keys, record SDK data.

`record_sdk_data` runs in one transaction: it takes the workspace's identity lock, drops the
events already stored within the retry window (their fingerprints), translates the rest into
the `/users/track` items and hands them to `identity.services.apply_track`, so a device's
anonymous profile, `changeUser` sign-in and merges follow the one identity code path. Sessions,
the device, fingerprints, counters and the session Currents events are written beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from cohorthub import keys
from cohorthub.apps import translate
from cohorthub.apps.errors import InvalidApp, InvalidSdkKey
from cohorthub.apps.model import SESSION_START, App, Device, SdkEvent, new_app_id, parse_sdk_request
from cohorthub.apps.ports import AppsUnitOfWork, SessionStart
from cohorthub.currents import envelope
from cohorthub.identity.listeners import IdentityListener
from cohorthub.identity.services import Resolved, apply_track
from cohorthub.workspaces.services import require_workspace

#: Fingerprints older than the window are forgotten this many at a time, on each write.
_FORGET_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SdkOutcome:
    """What one data request did: events stored, and what was dropped (and why)."""

    stored: int
    duplicates: int
    malformed: int
    unknown: int
    ignored: int
    sdk_errors: int


def _counts(outcome: SdkOutcome) -> dict[str, int]:
    """The counters one request adds to its app."""
    names = ("stored", "duplicates", "malformed", "unknown", "ignored", "sdk_errors")
    return {name: getattr(outcome, name) for name in names if getattr(outcome, name)}


def create_app(*, uow: AppsUnitOfWork, workspace_id: str, name: str, now: float) -> tuple[App, str]:
    """Create an SDK app in a workspace; return it and its SDK API key (shown once)."""
    require_workspace(uow=uow, workspace_id=workspace_id)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidApp("App name must be 1 to 200 characters")
    app = App(id=new_app_id(), workspace_id=workspace_id, name=name, created_at=now)
    key = keys.new_key()
    uow.apps.add(app, keys.hash_key(key))
    uow.commit()
    return app, key


def list_apps(*, uow: AppsUnitOfWork, workspace_id: str) -> list[tuple[App, dict[str, int]]]:
    """A workspace's apps with their counters."""
    require_workspace(uow=uow, workspace_id=workspace_id)
    return [(app, uow.apps.counters(app.id)) for app in uow.apps.all(workspace_id)]


def set_allowed_origins(*, uow: AppsUnitOfWork, workspace_id: str, origins: list[str]) -> list[str]:
    """Replace the workspace's allowed page origins (empty: any origin)."""
    require_workspace(uow=uow, workspace_id=workspace_id)
    cleaned = sorted({translate.parse_origin(o) for o in origins})
    uow.apps.set_origins(workspace_id, cleaned)
    uow.commit()
    return cleaned


def allowed_origins(*, uow: AppsUnitOfWork, workspace_id: str) -> list[str]:
    """The workspace's allowed page origins (empty: any origin)."""
    return uow.apps.origins(workspace_id)


def authenticate_sdk_key(*, uow: AppsUnitOfWork, key: object) -> App:
    """The app whose SDK API key this is; `InvalidSdkKey` otherwise."""
    app = uow.apps.by_key_hash(keys.hash_key(key)) if isinstance(key, str) and key else None
    if app is None:
        raise InvalidSdkKey("Invalid SDK API key")
    return app


def count_rejected(*, uow: AppsUnitOfWork, app: App, reason: str) -> None:
    """Count a whole request refused (too large, not JSON, no device, origin)."""
    uow.apps.count(app.id, {f"rejected_{reason}": 1})
    uow.commit()


def record_sdk_data(
    *,
    uow: AppsUnitOfWork,
    app: App,
    body: Any,
    listeners: Sequence[IdentityListener] = (),
    dedup_window: float,
    now: float,
) -> SdkOutcome:
    """Store one SDK data request: profile, sessions, events, purchases, attributes, device."""
    request = parse_sdk_request(body, now=now)
    workspace_id, device_id = app.workspace_id, request.device_id
    uow.apps.forget_seen(workspace_id, now - dedup_window, limit=_FORGET_BATCH)
    new = uow.apps.remember_new(workspace_id, [e.fingerprint for e in request.events], now=now)
    fresh, duplicates = _fresh(request.events, new)
    device = request.device or uow.apps.device(workspace_id, device_id) or Device()
    plan = translate.plan(fresh, request.attributes, device_id=device_id, app_id=app.id, now=now)
    plan.batch.events[:] = [replace(e, context=device.currents()) for e in plan.batch.events]
    plan.batch.purchases[:] = [replace(p, context=device.currents()) for p in plan.batch.purchases]
    result, resolved = apply_track(
        uow=uow,
        workspace_id=workspace_id,
        batch=plan.batch,
        listeners=listeners,
        visits=[target for _, target in plan.sessions],
        now=now,
    )
    events = _sessions(uow, app, device_id, device, [e for e, _ in plan.sessions], resolved)
    uow.outbox.append(workspace_id, events, now=now)
    uow.apps.save_device(workspace_id, device_id, app.id, request.device, now=now)
    lost = len(result.errors) + sum(1 for r in resolved if r is None)
    outcome = SdkOutcome(
        stored=len(fresh) - lost,
        duplicates=duplicates,
        malformed=request.malformed + lost,
        unknown=request.unknown,
        ignored=request.ignored,
        sdk_errors=request.sdk_errors,
    )
    uow.apps.count(app.id, _counts(outcome))
    uow.commit()
    return outcome


def _fresh(events: list[SdkEvent], new: set[str]) -> tuple[list[SdkEvent], int]:
    """The events first stored now (the first of repeats within the request), and how many were not."""
    fresh: list[SdkEvent] = []
    for event in events:
        if event.fingerprint in new:
            fresh.append(event)
            new.discard(event.fingerprint)
    return fresh, len(events) - len(fresh)


def _sessions(
    uow: AppsUnitOfWork,
    app: App,
    device_id: str,
    device: Device,
    events: list[SdkEvent],
    users: list[Resolved | None],
) -> list[envelope.Envelope]:
    """Store session starts and ends; return their Currents events (FirstSession on a user's first)."""
    workspace_id = app.workspace_id
    had = uow.apps.users_with_sessions(workspace_id, sorted({u.num for u in users if u is not None}))
    starts: list[SessionStart] = []
    ends: list[tuple[SessionStart, float, float]] = []
    out: list[envelope.Envelope] = []

    def emit(kind: str, event: SdkEvent, who: Resolved, duration: float | None = None) -> None:
        user = envelope.event_user(
            braze_id=who.braze_id,
            external_id=who.external_id,
            device_id=device_id,
            timezone=device.time_zone if kind == "FirstSession" else None,
        )
        session_id = event.session_id or ""
        out.append(
            envelope.session_event(
                kind,
                workspace_id=workspace_id,
                user=user,
                app_id=app.id,
                session_id=session_id,
                time=event.time,
                context=device.currents(),
                duration=duration,
            )
        )

    for event, who in zip(events, users, strict=True):
        if who is None or event.session_id is None:
            continue
        if event.code == SESSION_START:
            first = who.num not in had
            had.add(who.num)
            starts.append(SessionStart(event.session_id, who.num, device_id, event.time, first))
            emit("SessionStart", event, who)
            if first:
                emit("FirstSession", event, who)
        else:
            duration = float(event.data["d"])
            start = SessionStart(event.session_id, who.num, device_id, event.time - duration, False)
            ends.append((start, event.time, duration))
            emit("SessionEnd", event, who, duration)
    uow.apps.start_sessions(workspace_id, app.id, starts)
    for start, ended_at, duration in ends:
        uow.apps.end_session(workspace_id, app.id, start, ended_at=ended_at, duration=duration)
    return out
