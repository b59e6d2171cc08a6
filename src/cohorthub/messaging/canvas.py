"""Canvas definitions: entry, steps, exit criteria and re-entry rules (pure values and rules).

Steps form a graph from `first_step`: `message` (an e-mail or webhook, then `next`), `delay`
(`seconds`, or `until` a time of day `HH:MM` in the user's time zone, then `next`),
`audience_split` (the first path whose filter the user matches, else `else`) and
`decision_split` (did the user perform `event`, or buy `purchase`, within `within_seconds` of
reaching the step: `yes`, else `no`). A step without a successor ends the journey. A graph with a
cycle or a step that cannot be reached from `first_step` is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from cohorthub.messaging.errors import InvalidProgram
from cohorthub.messaging.model import (
    CHANNELS,
    RECURRENCES,
    TEN_YEARS,
    Conversion,
    EmailContent,
    Fields,
    Trigger,
    WebhookContent,
    is_purchase_trigger,
    parse_conversion,
    parse_email,
    parse_time,
    parse_webhook,
)

ENTRY_TYPES = ("cohort", "segment", "event", "api", "schedule")
STEP_TYPES = ("message", "delay", "audience_split", "decision_split")


@dataclass(frozen=True, slots=True)
class Entry:
    """How users enter: a partner cohort, a segment, an event, the API, or a scheduled segment."""

    type: str
    partner: str | None = None
    cohort_id: str | None = None
    segment_id: str | None = None
    event: str | None = None
    time: float | None = None
    filter: dict[str, Any] | None = None
    purchase: str | None = None  # an event entry on a purchase: its product id, "*" for any
    every: str | None = None  # a schedule entry that recurs: daily, weekly or monthly from `time`
    until: float | None = None  # the last time a recurring schedule entry may run


@dataclass(frozen=True, slots=True)
class Path:
    """One path of an audience split."""

    name: str
    filter: dict[str, Any]
    next: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a Canvas."""

    id: str
    name: str
    type: str
    next: str | None = None
    channel: str | None = None
    message: EmailContent | WebhookContent | None = None
    seconds: float | None = None
    until: str | None = None
    in_local_time: bool = True  # `until` in the user's time zone (UTC when unknown), else in UTC
    paths: tuple[Path, ...] = ()
    otherwise: str | None = None
    event: str | None = None
    purchase: str | None = None  # a decision split on a purchase: its product id, "*" for any
    within_seconds: float | None = None
    yes: str | None = None
    no: str | None = None
    message_variation_id: str = ""

    def successors(self) -> list[str]:
        """Every step this one can lead to."""
        out = [self.next, self.otherwise, self.yes, self.no, *(p.next for p in self.paths)]
        return [s for s in out if s]


@dataclass(frozen=True, slots=True)
class Exit:
    """Users leave when they perform one of `events`, buy one of `purchases` (product ids, "*" for any),
    or (when set) stop matching the entry audience."""

    events: tuple[str, ...] = ()
    leaves_audience: bool = False
    purchases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CanvasSpec:
    """A Canvas's whole definition, validated."""

    name: str
    entry: Entry
    steps: dict[str, Step]
    first_step: str
    exit: Exit = Exit()
    conversion: Conversion | None = None
    reentry: bool = False
    reentry_after_seconds: float = 0.0
    description: str = ""
    tags: tuple[str, ...] = ()
    variation_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def channels(self) -> list[str]:
        """The channels its message steps use."""
        return sorted({s.channel for s in self.steps.values() if s.channel})

    def triggers(self) -> list[Trigger]:
        """The custom events and purchases this Canvas reacts to: its conversion, exits, event entry and
        decision splits."""
        out: list[Trigger] = [(self.conversion.event, self.conversion.purchase)] if self.conversion else []
        out += [(name, False) for name in self.exit.events] + [(name, True) for name in self.exit.purchases]
        if self.entry.type == "event":
            out.append((self.entry.purchase or self.entry.event, self.entry.purchase is not None))
        out += [
            (s.purchase or s.event, s.purchase is not None)
            for s in self.steps.values()
            if s.type == "decision_split"
        ]
        return out


def entry_audience(entry: Entry) -> dict[str, Any] | None:
    """Who counts as still in the entry audience, as a segment filter: the entry cohort or segment, narrowed
    by the entry's filter; for event and API entries the filter alone; None when there is nothing to leave."""
    parts: list[dict[str, Any]] = []
    if entry.type == "cohort":
        cohort = {"type": "cohort", "partner": entry.partner, "cohort_id": entry.cohort_id}
        parts.append({**cohort, "op": "includes"})
    elif entry.segment_id:
        parts.append({"type": "segment", "segment_id": entry.segment_id, "op": "includes"})
    if entry.filter is not None:
        parts.append(entry.filter)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def _entry(raw: Any) -> Entry:
    f = Fields(raw, "entry")
    kind = f.choice("type", ENTRY_TYPES)
    flt = f.raw.get("filter")
    if flt is not None and not isinstance(flt, dict):
        raise InvalidProgram(f.at("filter"), "must be a filter object")
    if kind == "cohort":
        return Entry(
            kind, partner=f.text("partner", limit=64), cohort_id=f.text("cohort_id", limit=512), filter=flt
        )
    if kind == "segment":
        return Entry(kind, segment_id=f.text("segment_id", limit=64), filter=flt)
    if kind == "event":
        if is_purchase_trigger(f):
            return Entry(kind, purchase=f.text("purchase", limit=256), filter=flt)
        return Entry(kind, event=f.text("event", limit=256), filter=flt)
    if kind == "schedule":
        time = parse_time(f.raw.get("time"), f.at("time"))
        every = f.choice("every", RECURRENCES) if f.raw.get("every") is not None else None
        until = parse_time(f.raw["until"], f.at("until")) if f.raw.get("until") is not None else None
        if until is not None and until < time:
            raise InvalidProgram(f.at("until"), "must not be before time")
        return Entry(
            kind, segment_id=f.optional_text("segment_id"), time=time, filter=flt, every=every, until=until
        )
    return Entry(kind, filter=flt)


def _step(raw: Any, path: str) -> Step:
    f = Fields(raw, path)
    step_id = f.text("id", limit=64)
    kind = f.choice("type", STEP_TYPES)
    name = f.text("name", default=step_id, limit=200)
    base: dict[str, Any] = {"id": step_id, "name": name, "type": kind}
    if kind == "message":
        channel = f.choice("channel", CHANNELS)
        message: EmailContent | WebhookContent = (
            parse_email(f.raw.get("email"), f.at("email"))
            if channel == "email"
            else parse_webhook(f.raw.get("webhook"), f.at("webhook"))
        )
        variation = str(f.raw.get("message_variation_id") or uuid.uuid5(uuid.NAMESPACE_URL, step_id))
        return Step(
            **base,
            next=f.optional_text("next"),
            channel=channel,
            message=message,
            message_variation_id=variation,
        )
    if kind == "delay":
        until = f.optional_text("until")
        seconds = f.number("seconds", minimum=0)
        if (until is None) == (seconds is None):
            raise InvalidProgram(path, "a delay needs exactly one of seconds or until (HH:MM)")
        if until is not None and not _is_hhmm(until):
            raise InvalidProgram(f.at("until"), "must be a time of day HH:MM")
        local = f.flag("in_local_time", True)
        return Step(**base, next=f.optional_text("next"), seconds=seconds, until=until, in_local_time=local)
    if kind == "audience_split":
        paths_raw = f.raw.get("paths")
        if not isinstance(paths_raw, list) or not paths_raw:
            raise InvalidProgram(f.at("paths"), "must be a non-empty array")
        paths = []
        for i, p in enumerate(paths_raw):
            pf = Fields(p, f"{f.at('paths')}[{i}]")
            if not isinstance(pf.raw.get("filter"), dict):
                raise InvalidProgram(pf.at("filter"), "must be a filter object")
            paths.append(
                Path(pf.text("name", default=f"Path {i + 1}"), pf.raw["filter"], pf.optional_text("next"))
            )
        return Step(**base, paths=tuple(paths), otherwise=f.optional_text("else"))
    within = f.number("within_seconds", minimum=1)
    if within is None:
        raise InvalidProgram(f.at("within_seconds"), "is required for a decision split")
    bought = is_purchase_trigger(f)
    return Step(
        **base,
        event=None if bought else f.text("event", limit=256),
        purchase=f.text("purchase", limit=256) if bought else None,
        within_seconds=within,
        yes=f.optional_text("yes"),
        no=f.optional_text("no"),
    )


def _is_hhmm(text: str) -> bool:
    hours, _, minutes = text.partition(":")
    return text.isascii() and (
        hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2
    )


def check_graph(steps: dict[str, Step], first: str) -> None:
    """Refuse unknown successors, cycles and unreachable steps."""
    for step in steps.values():
        for nxt in step.successors():
            if nxt not in steps:
                raise InvalidProgram(f"steps.{step.id}", f"leads to unknown step {nxt}")
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, chain: list[str]) -> None:
        state[node] = 1
        for nxt in steps[node].successors():
            if state.get(nxt) == 1:
                loop = [*chain[chain.index(nxt) :], nxt]
                raise InvalidProgram("steps", "the steps form a cycle: " + " → ".join(loop))
            if nxt not in state:
                visit(nxt, [*chain, nxt])
        state[node] = 2

    visit(first, [first])
    unreachable = sorted(set(steps) - set(state))
    if unreachable:
        raise InvalidProgram("steps", "unreachable from first_step: " + ", ".join(unreachable))


def parse_canvas(raw: Any) -> CanvasSpec:
    """Validate a Canvas definition."""
    f = Fields(raw, "")
    steps_raw = f.raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise InvalidProgram("steps", "must be a non-empty array")
    steps: dict[str, Step] = {}
    for i, s in enumerate(steps_raw):
        step = _step(s, f"steps[{i}]")
        if step.id in steps:
            raise InvalidProgram(f"steps[{i}].id", f"duplicate step id {step.id}")
        steps[step.id] = step
    first = f.text("first_step", default=next(iter(steps)), limit=64)
    if first not in steps:
        raise InvalidProgram("first_step", f"no step with id {first}")
    check_graph(steps, first)
    ex = Fields(f.raw.get("exit") or {}, "exit")
    re_entry = Fields(f.raw.get("reentry") or {}, "reentry")
    after_days = re_entry.number("after_days", default=0, minimum=0, maximum=TEN_YEARS / 86400) or 0.0
    return CanvasSpec(
        name=f.text("name", limit=200).strip(),
        entry=_entry(f.raw.get("entry")),
        steps=steps,
        first_step=first,
        exit=Exit(
            events=ex.strings("events"),
            leaves_audience=ex.flag("leaves_audience", False),
            purchases=ex.strings("purchases"),
        ),
        conversion=parse_conversion(f.raw.get("conversion"), "conversion"),
        reentry=re_entry.flag("allowed", False),
        reentry_after_seconds=after_days * 86400.0,
        description=f.text("description", default=""),
        tags=f.strings("tags"),
        variation_id=str(f.raw.get("variation_id") or uuid.uuid4()),
    )
