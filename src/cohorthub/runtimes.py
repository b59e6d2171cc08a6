"""Background runtimes, started from one place: the Currents worker, the segment warm-up, messaging.

`serve` starts them all; `cohorthub messaging worker` and `cohorthub currents worker` start one each.
"""

from __future__ import annotations

import gc
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cohorthub.bootstrap import Container
from cohorthub.config import parse_cap
from cohorthub.messaging import services as messaging
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpPool
from cohorthub.messaging.channels.webhook import HttpWebhookTransport
from cohorthub.messaging.dispatch import Channels, Sender
from cohorthub.messaging.event_reactions import EventReactions
from cohorthub.messaging.journeys import Journeys
from cohorthub.messaging.ports import EmailTransport, MessagingUnitOfWork, WebhookTransport
from cohorthub.messaging.scheduler import JobRunner, SchedulerOptions
from cohorthub.messaging.tracking import Tracker
from cohorthub.messaging.worker import MessagingWorker, WorkerOptions
from cohorthub.store.notify import listen


def freeze_startup_heap() -> int:
    """Leave the objects a server process made while starting out of the garbage collector's passes.

    Modules, classes, functions and the SQL metadata (~120,000 objects, alive until the process
    ends) were walked by every full collection: ~40 ms holding the interpreter lock, every second
    or two under writes, which every request in flight waited out (most of a segment read's p99).
    Called once, just before serving: what is frozen is what startup left alive (its garbage is
    collected first), and later objects are collected as before. Returns how many are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def tracker_for(c: Container) -> Tracker:
    """The tracking-link signer (its secret is created in the database on first use, then cached)."""
    found = c.extras.get("tracker")
    if isinstance(found, Tracker):
        return found
    with c.uow() as uow:
        secret = uow.messaging.facts.secret(secrets.token_urlsafe(32))
        uow.commit()
    tracker = Tracker(base_url=c.settings.public_url.rstrip("/"), secret=secret.encode())
    c.extras["tracker"] = tracker
    return tracker


def audience_fn(c: Container) -> Callable[[MessagingUnitOfWork, str, Any], Any]:
    """Exact audience members through the container's segment indexes and cohort cache."""

    def members(uow: MessagingUnitOfWork, workspace_id: str, raw_filter: Any) -> Any:
        return messaging.audience_members(
            uow=uow,
            indexes=c.segments,
            membership=c.membership,
            workspace_id=workspace_id,
            raw_filter=raw_filter,
            now=c.now(),
        )

    return members


def default_channels(c: Container) -> Channels:
    """SMTP from `COHORTHUB_SMTP_URL`, webhooks over httpx."""
    smtp = SmtpConfig.from_url(c.settings.smtp_url, timeout=c.settings.smtp_timeout_seconds)
    return Channels(
        email=SmtpPool(smtp), webhook=HttpWebhookTransport(timeout=c.settings.webhook_timeout_seconds)
    )


@dataclass
class Messaging:
    """The wired messaging runtime of one process."""

    sender: Sender
    jobs: JobRunner
    journeys: Journeys
    reactions: EventReactions
    worker: MessagingWorker
    channels: Channels


def messaging_runtime(
    c: Container, *, email: EmailTransport | None = None, webhook: WebhookTransport | None = None
) -> Messaging:
    """Wire the sender, scheduler, journeys and worker (transports default to SMTP and httpx)."""
    channels = default_channels(c) if email is None or webhook is None else Channels(email, webhook)
    if email is not None:
        channels.email = email
    if webhook is not None:
        channels.webhook = webhook
    owner = f"msg-{uuid.uuid4().hex[:12]}"
    batch = max(1, c.settings.messaging_batch)
    sender = Sender(uow=c.uow, channels=channels, tracker=lambda: tracker_for(c), now=c.now, batch_size=batch)
    cap = parse_cap(c.settings.frequency_cap)
    options = SchedulerOptions(
        batch_size=batch,
        lease_seconds=c.settings.messaging_lease_seconds,
        max_lateness=c.settings.messaging_max_lateness_seconds,
        frequency_cap=cap[0] if cap else None,
        frequency_window=cap[1] if cap else 86400.0,
    )
    audience = audience_fn(c)
    jobs = JobRunner(uow=c.uow, sender=sender, audience=audience, now=c.now, owner=owner, options=options)
    margin = 200 if c.engine.dialect.name == "postgresql" else 0
    journeys = Journeys(
        uow=c.uow,
        sender=sender,
        audience=audience,
        now=c.now,
        owner=owner,
        lease_seconds=c.settings.messaging_lease_seconds,
    )
    reactions = EventReactions(uow=c.uow, now=c.now, event_margin=margin)
    worker = MessagingWorker(
        jobs=jobs,
        journeys=journeys,
        reactions=reactions,
        options=WorkerOptions(poll_seconds=c.settings.messaging_poll_seconds),
    )
    return Messaging(sender, jobs, journeys, reactions, worker, channels)


class _Stop(threading.Event):
    """Setting it also wakes the worker, so that it stops now rather than after its poll interval."""

    def __init__(self, wake: Callable[[], None]) -> None:
        super().__init__()
        self._wake = wake

    def set(self) -> None:
        """Stop, and wake the worker to see it."""
        super().set()
        self._wake()


def start_messaging(c: Container, **transports: Any) -> tuple[threading.Event, threading.Thread]:
    """Run the messaging worker in a background thread; set the event to stop it."""
    runtime = messaging_runtime(c, **transports)
    c.extras["messaging"] = runtime
    stop = _Stop(runtime.worker.wake)
    c.cohort_listeners.append(runtime.worker)

    def run() -> None:
        try:
            runtime.worker.run(stop)
        finally:
            c.cohort_listeners = [x for x in c.cohort_listeners if x is not runtime.worker]
            runtime.sender.close()
            runtime.channels.email.close()
            runtime.channels.webhook.close()

    thread = threading.Thread(target=run, name="messaging", daemon=True)
    thread.start()
    if c.engine.dialect.name == "postgresql":
        listen(c.engine, runtime.worker.wake, stop)  # imports in other processes wake it too
    return stop, thread
