"""Which custom events and purchases a campaign or a Canvas reacts to (the event scanner skips the rest)."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.messaging.canvas import parse_canvas
from cohorthub.messaging.model import Triggers, parse_campaign, trigger_matches
from cohorthub.messaging.ports import EventRow

MAIL = {"from": "a@shop.test", "subject": "S", "body": "<p>hi</p>"}


def ev(name: str) -> EventRow:
    return EventRow(1, "ws", 7, name, 0.0, {})


def buy(product: str) -> EventRow:
    return EventRow(1, "ws", 7, product, 0.0, {}, kind="purchase")


def _campaign(**overrides: Any) -> Any:
    return parse_campaign(
        {"name": "c", "channel": "email", "email": MAIL, "delivery": {"type": "now"}, **overrides}
    )


def _canvas(**overrides: Any) -> Any:
    steps = [{"id": "hello", "type": "message", "channel": "email", "email": MAIL}]
    return parse_canvas({"name": "v", "entry": {"type": "api"}, "steps": steps, **overrides})


@pytest.mark.parametrize(
    ("overrides", "reacts", "ignores"),
    [
        ({}, [], [ev("bought"), buy("sku-1")]),
        ({"delivery": {"type": "action", "event": "bought"}}, [ev("bought")], [ev("other"), buy("bought")]),
        ({"delivery": {"type": "action", "purchase": "sku-1"}}, [buy("sku-1")], [buy("sku-2"), ev("sku-1")]),
        ({"delivery": {"type": "action", "purchase": "*"}}, [buy("sku-1"), buy("x")], [ev("x")]),
        ({"conversion": {"event": "paid", "window_seconds": 60}}, [ev("paid")], [ev("other"), buy("paid")]),
        ({"conversion": {"purchase": "*", "window_seconds": 60}}, [buy("any")], [ev("any")]),
    ],
)  # fmt: skip
def test_a_campaign_reacts_to_its_trigger_and_its_conversion_only(
    overrides: dict[str, Any], reacts: list[EventRow], ignores: list[EventRow]
) -> None:
    _check(_campaign(**overrides), reacts, ignores)


def _check(spec: Any, reacts: list[EventRow], ignores: list[EventRow]) -> None:
    triggers = Triggers(spec.triggers())
    assert [triggers.match(e) for e in reacts] == [True] * len(reacts)
    assert [triggers.match(e) for e in ignores] == [False] * len(ignores)
    # the lookup agrees with the rule each reaction applies itself
    for e in reacts + ignores:
        assert triggers.match(e) == any(trigger_matches(n, p, e) for n, p in spec.triggers())
    assert triggers.watch(True) == any(p and n is not None for n, p in spec.triggers())
    assert triggers.watch(False) == any(not p and n is not None for n, p in spec.triggers())


def _split(**on: Any) -> dict[str, Any]:
    steps = [
        {"id": "hello", "type": "message", "channel": "email", "email": MAIL, "next": "decide"},
        {"id": "decide", "type": "decision_split", "within_seconds": 60, "yes": "thanks", **on},
        {"id": "thanks", "type": "message", "channel": "email", "email": MAIL},
    ]
    return {"steps": steps}


@pytest.mark.parametrize(
    ("overrides", "reacts", "ignores"),
    [
        ({}, [], [ev("bought"), buy("sku-1")]),
        ({"entry": {"type": "event", "event": "signed_up"}}, [ev("signed_up")], [ev("x"), buy("signed_up")]),
        ({"entry": {"type": "event", "purchase": "sku-1"}}, [buy("sku-1")], [buy("sku-2"), ev("sku-1")]),
        ({"exit": {"events": ["quit"]}}, [ev("quit")], [ev("stay"), buy("quit")]),
        ({"exit": {"purchases": ["refund"]}}, [buy("refund")], [buy("sku-1"), ev("refund")]),
        ({"exit": {"purchases": ["*"]}}, [buy("sku-1")], [ev("sku-1")]),
        (_split(event="bought"), [ev("bought")], [ev("other"), buy("bought")]),
        (_split(purchase="*"), [buy("sku-3")], [ev("sku-3")]),
        ({"conversion": {"event": "paid", "window_seconds": 60}}, [ev("paid")], [ev("other")]),
        ({"conversion": {"purchase": "sku-1", "window_seconds": 60}}, [buy("sku-1")], [buy("sku-2")]),
    ],
)  # fmt: skip
def test_a_canvas_reacts_to_its_entry_exits_decisions_and_conversion_only(
    overrides: dict[str, Any], reacts: list[EventRow], ignores: list[EventRow]
) -> None:
    _check(_canvas(**overrides), reacts, ignores)
