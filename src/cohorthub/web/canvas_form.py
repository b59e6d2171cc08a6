"""The Canvas editor's forms as definition changes (pure: form fields in, definition JSON out).

A Canvas definition is kept as the JSON the messaging services accept (docs/messaging.md); the editor
changes one part of it (a step, the entry, the exit criteria) and hands the whole definition back to
`update_program`, which validates it. A step's successors are chosen among the other steps or *Exit*
(nothing: the journey ends there). A new step goes into a *position*: the start of the Canvas or one
successor of an existing step; the successors it is given default to where that position led.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cohorthub import clock
from cohorthub.messaging.errors import InvalidProgram

Form = Mapping[str, str]
Definition = dict[str, Any]

KEEP = "@position"  # a successor field's value: where the chosen position led
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
SUCCESSORS = ("next", "else", "yes", "no")
_LINEAR = ("message", "delay")
MAX_PATHS = 50  # paths an audience split's form shows


def steps_of(definition: Definition) -> list[dict[str, Any]]:
    """The definition's steps (raw)."""
    steps = definition.get("steps")
    return steps if isinstance(steps, list) else []


def first_step(definition: Definition) -> str | None:
    """The id of the step journeys start at."""
    steps = steps_of(definition)
    return definition.get("first_step") or (steps[0].get("id") if steps else None)


def positions(definition: Definition) -> list[tuple[str, str, str]]:
    """Where a new step can go: (value, step id or "", successor field), the start first."""
    out = [("first", "", "first")]
    for step in steps_of(definition):
        sid = str(step.get("id"))
        kind = step.get("type")
        if kind in _LINEAR:
            out.append((f"{sid}:next", sid, "next"))
        elif kind == "audience_split":
            out.extend((f"{sid}:path:{i}", sid, f"path {i + 1}") for i in range(len(step.get("paths") or [])))
            out.append((f"{sid}:else", sid, "else"))
        elif kind == "decision_split":
            out.extend((f"{sid}:{f}", sid, f) for f in ("yes", "no"))
    return out


def _step(definition: Definition, step_id: str) -> dict[str, Any]:
    for step in steps_of(definition):
        if step.get("id") == step_id:
            return step
    raise InvalidProgram("steps", f"no step with id {step_id}")


def _target(definition: Definition, position: str) -> tuple[dict[str, Any], str]:
    """The object and key a position's successor is stored under."""
    if position == "first":
        return definition, "first_step"
    step_id, _, field = position.rpartition(":")
    if field.isascii() and field.isdigit() and step_id.endswith(":path"):
        paths = _step(definition, step_id.removesuffix(":path")).get("paths") or []
        if int(field) >= len(paths):
            raise InvalidProgram("position", f"no such position {position}")
        return paths[int(field)], "next"
    if field not in SUCCESSORS:
        raise InvalidProgram("position", f"no such position {position}")
    return _step(definition, step_id), field


def insert_step(definition: Definition, step: dict[str, Any], position: str) -> Definition:
    """A copy with `step` added at `position` (its `KEEP` successors take the position's old target)."""
    out = copy.deepcopy(definition)
    if any(s.get("id") == step.get("id") for s in steps_of(out)):
        raise InvalidProgram("id", f"a step with id {step.get('id')} exists already")
    holder, key = _target(out, position)
    old = first_step(out) if position == "first" else holder.get(key)
    step = _resolve_keep(step, old)
    out.setdefault("steps", []).append(step)
    holder[key] = step["id"]
    return out


def _resolve_keep(step: dict[str, Any], old: str | None) -> dict[str, Any]:
    step = dict(step)
    for field in SUCCESSORS:
        if step.get(field) == KEEP:
            step[field] = old
    if "paths" in step:
        paths = step["paths"]
        step["paths"] = [{**p, "next": old if p.get("next") == KEEP else p.get("next")} for p in paths]
    return _compact(step)


def replace_step(definition: Definition, step_id: str, step: dict[str, Any]) -> Definition:
    """A copy with the step `step_id` replaced (its id and message variation kept)."""
    out = copy.deepcopy(definition)
    old = _step(out, step_id)
    new = _resolve_keep({**step, "id": step_id}, None)
    if old.get("message_variation_id") and new.get("type") == "message":
        new["message_variation_id"] = old["message_variation_id"]
    out["steps"] = [new if s is old else s for s in steps_of(out)]
    return out


def remove_step(definition: Definition, step_id: str) -> Definition:
    """A copy without the step: whatever led to it leads to its `next` (a split's branches: exit)."""
    out = copy.deepcopy(definition)
    gone = _step(out, step_id)
    follow = gone.get("next") if gone.get("type") in _LINEAR else None
    out["steps"] = [s for s in steps_of(out) if s is not gone]
    if not out["steps"]:
        raise InvalidProgram("steps", "a Canvas needs at least one step")
    if first_step(definition) == step_id:
        out["first_step"] = follow or out["steps"][0]["id"]
    for step in out["steps"]:
        for field in SUCCESSORS:
            if step.get(field) == step_id:
                step[field] = follow
        for path in step.get("paths") or []:
            if path.get("next") == step_id:
                path["next"] = follow
    return out


def _successor(form: Form, name: str) -> str | None:
    return form.get(name, "").strip() or None


def _seconds(form: Form, prefix: str) -> Any:
    amount = form.get(f"{prefix}_amount", "").strip()
    unit = UNITS.get(form.get(f"{prefix}_unit", ""), 3600)
    try:
        return float(amount) * unit
    except ValueError:
        return amount or None  # the service names what is wrong


def split_amount(seconds: float | None) -> tuple[str, str]:
    """Seconds as (amount, unit) in the largest unit that divides them."""
    if not seconds:
        return "", "hours"
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            return f"{int(seconds // UNITS[unit])}", unit
    return f"{seconds / 60:g}", "minutes"


def parse_headers(text: str, path: str) -> dict[str, str]:
    """`Name: value` lines (blank lines ignored)."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name.strip()):
            raise InvalidProgram(path, f"line {number}: expected Name: value")
        headers[name.strip()] = value.strip()
    return headers


def format_headers(headers: Mapping[str, str] | None) -> str:
    """Headers as `Name: value` lines."""
    return "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())


def message_from_form(form: Form, path: str = "") -> dict[str, Any]:
    """`channel` and its `email` or `webhook` content from the message fields."""
    channel = form.get("channel") or "email"
    if channel == "webhook":
        return {"channel": "webhook", "webhook": {
            "url": form.get("url", "").strip(),
            "request_method": form.get("method") or "POST",
            "request_headers": parse_headers(form.get("headers", ""), f"{path}webhook.request_headers"),
            "body": form.get("webhook_body", ""),
        }}  # fmt: skip
    email = {"from": form.get("from", ""), "subject": form.get("subject", ""), "body": form.get("body", "")}
    return {"channel": channel, "email": email}


def path_count(form: Form) -> int:
    """How many existing paths the audience split form holds (a form never has more than MAX_PATHS)."""
    text = form.get("path_count", "")
    if not (text.isascii() and text.isdigit() and len(text) <= 3):
        return 0
    return min(int(text), MAX_PATHS)


def _paths(form: Form) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(path_count(form) + 1):
        name = form.get(f"path_name_{i}", "").strip()
        segment = form.get(f"path_segment_{i}", "")
        text = form.get(f"path_filter_{i}", "").strip()
        if form.get(f"path_remove_{i}") or not (name or segment or text):
            continue
        flt: Any = {"type": "segment", "segment_id": segment, "op": "includes"} if segment else None
        if text:
            try:
                flt = json.loads(text)
            except ValueError as exc:
                raise InvalidProgram(f"paths[{len(out)}].filter", f"not JSON: {exc}") from None
        out.append({"name": name or f"Path {len(out) + 1}", "filter": flt,
                    "next": _successor(form, f"path_next_{i}")})  # fmt: skip
    return out


def step_from_form(form: Form, step_id: str) -> dict[str, Any]:
    """A raw step of the chosen type from the step form's fields."""
    kind = form.get("type", "")
    step: dict[str, Any] = {"id": step_id, "name": form.get("name", "").strip() or step_id, "type": kind}
    if kind == "message":
        step.update(message_from_form(form), next=_successor(form, "next"))
    elif kind == "delay":
        if form.get("delay_mode") == "until":
            step.update(until=form.get("until", "").strip(), next=_successor(form, "next"))
            if form.get("until_utc"):
                step["in_local_time"] = False
        else:
            step.update(seconds=_seconds(form, "delay"), next=_successor(form, "next"))
    elif kind == "audience_split":
        step.update(paths=_paths(form), **{"else": _successor(form, "else")})
    elif kind == "decision_split":
        product = form.get("purchase", "").strip()
        step.update({"purchase": product} if product else {"event": form.get("event", "").strip()})
        step.update(within_seconds=_seconds(form, "within"), yes=_successor(form, "yes"),
                    no=_successor(form, "no"))  # fmt: skip
    return _compact(step)


def _compact(step: dict[str, Any]) -> dict[str, Any]:
    """Without empty successors (an absent successor is an exit)."""
    if "paths" in step:
        step["paths"] = [{k: v for k, v in p.items() if v is not None} for p in step["paths"]]
    return {k: v for k, v in step.items() if v is not None}


def new_step_id(definition: Definition, name: str) -> str:
    """A step id from its name, unique in the Canvas."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "step"
    taken = {s.get("id") for s in steps_of(definition)}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def entry_from_form(form: Form, old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The raw entry; a cohort or event entry's filter from `entry_filter` (JSON; empty: none)."""
    kind = form.get("entry_type", "")
    entry: dict[str, Any] = {"type": kind}
    if kind == "cohort":
        partner, _, cohort_id = form.get("cohort", "").partition("|")
        entry.update(partner=partner, cohort_id=cohort_id)
    elif kind == "segment":
        entry["segment_id"] = form.get("entry_segment_id", "")
    elif kind == "event":
        product = form.get("entry_purchase", "").strip()
        entry.update({"purchase": product} if product else {"event": form.get("entry_event", "").strip()})
    elif kind == "schedule":
        entry["time"] = utc_time(form.get("entry_time", ""))
        if form.get("entry_segment_id"):
            entry["segment_id"] = form["entry_segment_id"]
        if form.get("entry_every"):
            entry["every"] = form["entry_every"]  # the service names a bad one
        if old and old.get("type") == "schedule" and old.get("until") is not None:
            entry["until"] = old["until"]
    if kind not in ("cohort", "event"):
        pass  # a filter narrows cohort and event entries only (docs/messaging.md)
    elif "entry_filter" in form:
        text = form["entry_filter"].strip()
        if text:
            try:
                entry["filter"] = json.loads(text)
            except ValueError as exc:
                raise InvalidProgram("entry.filter", f"not JSON: {exc}") from None
    elif old and old.get("filter") is not None:
        entry["filter"] = old["filter"]
    return entry


def utc_time(text: str) -> str | None:
    """A `datetime-local` value as ISO 8601 in UTC (the service names a bad one)."""
    text = text.strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()
    except ValueError:
        return text


def fields_of_step(step: Mapping[str, Any]) -> dict[str, str]:
    """The step form's fields for a stored step (the inverse of `step_from_form`)."""
    f: dict[str, str] = {"type": str(step.get("type", "message")), "name": str(step.get("name") or "")}
    f.update({k: str(step.get(k) or "") for k in ("next", "else", "yes", "no", "event", "purchase", "until")})
    f.update(message_fields(step))
    f["delay_mode"] = "until" if step.get("until") else "for"
    f["until_utc"] = "1" if step.get("in_local_time") is False else ""
    f["delay_amount"], f["delay_unit"] = split_amount(step.get("seconds"))
    f["within_amount"], f["within_unit"] = split_amount(step.get("within_seconds"))
    paths = step.get("paths") or []
    f["path_count"] = str(len(paths))
    for i, p in enumerate(paths):
        flt = p.get("filter") or {}
        segment = flt.get("segment_id", "") if set(flt) == {"type", "segment_id", "op"} and flt.get(
            "type") == "segment" and flt.get("op") == "includes" else ""  # fmt: skip
        f.update({f"path_name_{i}": str(p.get("name") or ""), f"path_segment_{i}": segment,
                  f"path_filter_{i}": "" if segment else json.dumps(flt),
                  f"path_next_{i}": str(p.get("next") or "")})  # fmt: skip
    return f


def message_fields(raw: Mapping[str, Any]) -> dict[str, str]:
    """The message fields (channel, e-mail or webhook) of a campaign or message step."""
    email, hook = raw.get("email") or {}, raw.get("webhook") or {}
    return {
        "channel": str(raw.get("channel") or "email"),
        "from": email.get("from", ""), "subject": email.get("subject", ""), "body": email.get("body", ""),
        "url": hook.get("url", ""), "method": hook.get("request_method", "POST"),
        "headers": format_headers(hook.get("request_headers")), "webhook_body": hook.get("body", ""),
    }  # fmt: skip


def fields_of_entry(entry: Mapping[str, Any]) -> dict[str, str]:
    """The entry form's fields for a stored entry."""
    time = entry.get("time")
    when = ""
    if isinstance(time, str | int | float) and time != "":
        try:
            stamp = float(time) if not isinstance(time, str) else datetime.fromisoformat(
                time.replace("Z", "+00:00")).timestamp()  # fmt: skip
            when = clock.format_iso(stamp, timespec="minutes")[:16]  # a stored value shown, whatever it is
        except ValueError:
            when = str(time)
    return {
        "entry_type": str(entry.get("type") or "api"),
        "cohort": f"{entry.get('partner')}|{entry.get('cohort_id')}" if entry.get("type") == "cohort" else "",
        "entry_segment_id": str(entry.get("segment_id") or ""),
        "entry_event": str(entry.get("event") or ""),
        "entry_purchase": str(entry.get("purchase") or ""),
        "entry_every": str(entry.get("every") or ""),
        "entry_time": when,
        "entry_filter": json.dumps(entry["filter"]) if entry.get("filter") is not None else "",
    }


def settings_from_form(form: Form, definition: Definition) -> Definition:
    """A copy with the name, exit criteria, conversion and re-entry rules from the settings form."""
    out = copy.deepcopy(definition)
    events = [e.strip() for e in form.get("exit_events", "").split(",") if e.strip()]
    out.update(name=form.get("name", ""))  # the exit's other criteria (purchases) are kept
    out["exit"] = {**(out.get("exit") or {}), "events": events, "leaves_audience": "leaves_audience" in form}
    kind = form.get("conversion_kind", "none")
    if kind in ("event", "purchase"):
        window = _seconds(form, "conversion_window")
        out["conversion"] = {kind: form.get(f"conversion_{kind}", "").strip()}
        if window is not None:
            out["conversion"]["window_seconds"] = window
    else:
        out.pop("conversion", None)
    allowed = "reentry" in form
    days: Any = form.get("reentry_after_days", "").strip() or 0
    with contextlib.suppress(ValueError):  # the service names what is wrong
        days = float(days)
    out["reentry"] = {"allowed": allowed, "after_days": days if allowed else 0}
    return out


def fields_of_settings(definition: Mapping[str, Any]) -> dict[str, str]:
    """The settings form's conversion and re-entry fields for a stored definition."""
    conversion = definition.get("conversion") or {}
    kind = "event" if conversion.get("event") else "purchase" if conversion.get("purchase") else "none"
    amount, unit = split_amount(conversion.get("window_seconds")) if kind != "none" else ("3", "days")
    reentry = definition.get("reentry") or {}
    days = reentry.get("after_days") or 0
    return {
        "conversion_kind": kind,
        "conversion_event": str(conversion.get("event") or ""),
        "conversion_purchase": str(conversion.get("purchase") or ""),
        "conversion_window_amount": amount,
        "conversion_window_unit": unit,
        "reentry": "1" if reentry.get("allowed") else "",
        "reentry_after_days": f"{days:g}" if isinstance(days, int | float) else str(days),
    }
