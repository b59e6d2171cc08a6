"""The Canvas editor's forms as definition changes: positions, insert, replace, remove, round trips."""

from __future__ import annotations

from typing import Any

import pytest

from cohorthub.messaging.canvas import parse_canvas
from cohorthub.messaging.errors import InvalidProgram
from cohorthub.web import canvas_form as cf

MAIL = {"channel": "email", "email": {"from": "news@acme.io", "subject": "Hi", "body": "<p>Hi</p>"}}


def _canvas() -> dict[str, Any]:
    return {"name": "C", "entry": {"type": "api"}, "steps": [
        {"id": "hello", "name": "Hello", "type": "message", **MAIL, "next": "split"},
        {"id": "split", "name": "Split", "type": "audience_split", "else": "bye",
         "paths": [{"name": "ES", "filter": {"type": "segment", "segment_id": "s1", "op": "includes"}}]},
        {"id": "bye", "name": "Bye", "type": "decision_split", "event": "buy", "within_seconds": 5400,
         "yes": None, "no": None},
    ]}  # fmt: skip


def test_positions_name_every_successor_and_the_start() -> None:
    values = [v for v, _, _ in cf.positions(_canvas())]
    assert values == ["first", "hello:next", "split:path:0", "split:else", "bye:yes", "bye:no"]


def test_a_step_goes_between_a_position_and_where_it_led() -> None:
    wait = {"id": "wait", "name": "Wait", "type": "delay", "seconds": 60, "next": cf.KEEP}
    out = cf.insert_step(_canvas(), wait, "hello:next")
    assert out["steps"][0]["next"] == "wait" and out["steps"][-1]["next"] == "split"
    first = cf.insert_step(_canvas(), {**wait, "id": "w0"}, "first")
    assert first["first_step"] == "w0" and first["steps"][-1]["next"] == "hello"
    path = cf.insert_step(_canvas(), {**wait, "id": "w1"}, "split:path:0")
    assert path["steps"][1]["paths"][0]["next"] == "w1" and "next" not in path["steps"][-1]
    parse_canvas(out), parse_canvas(first), parse_canvas(path)
    with pytest.raises(InvalidProgram, match="exists already"):
        cf.insert_step(_canvas(), {**wait, "id": "hello"}, "first")
    with pytest.raises(InvalidProgram, match="no such position"):
        cf.insert_step(_canvas(), wait, "split:path:4")


def test_removing_a_step_reconnects_what_led_to_it() -> None:
    out = cf.remove_step(_canvas(), "hello")
    assert out["first_step"] == "split" and [s["id"] for s in out["steps"]] == ["split", "bye"]
    out = cf.remove_step(_canvas(), "bye")
    assert out["steps"][1]["else"] is None
    with pytest.raises(InvalidProgram, match="unreachable from first_step: bye"):
        parse_canvas(cf.remove_step(_canvas(), "split"))  # a split's branches become exits
    one = {"name": "C", "entry": {"type": "api"}, "steps": [_canvas()["steps"][0]]}
    with pytest.raises(InvalidProgram, match="at least one step"):
        cf.remove_step(one, "hello")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_stored_step_survives_its_form(index: int) -> None:
    step = {k: v for k, v in _canvas()["steps"][index].items() if v is not None}
    assert cf.step_from_form(cf.fields_of_step(step), step["id"]) == step


def test_form_fields_become_a_step() -> None:
    form = {"type": "delay", "delay_mode": "for", "delay_amount": "1.5", "delay_unit": "hours", "next": "x"}
    assert cf.step_from_form(form, "d") == {"id": "d", "name": "d", "type": "delay", "seconds": 5400.0,
                                            "next": "x"}  # fmt: skip
    headers = "X-Key: 1\n\nAuthorization: Bearer t"
    webhook = {"type": "message", "channel": "webhook", "url": "https://h.io/{{${user_id}}}",
               "method": "PUT", "headers": headers, "webhook_body": "{}"}  # fmt: skip
    assert cf.step_from_form(webhook, "w")["webhook"] == {
        "url": "https://h.io/{{${user_id}}}", "request_method": "PUT", "body": "{}",
        "request_headers": {"X-Key": "1", "Authorization": "Bearer t"},
    }  # fmt: skip
    with pytest.raises(InvalidProgram, match="request_headers: line 1: expected Name: value"):
        cf.step_from_form({**webhook, "headers": "no colon"}, "w")
    split = {"type": "audience_split", "path_count": "1", "path_name_0": "A", "path_filter_0": "{nope",
             "path_name_1": "", "path_segment_1": ""}  # fmt: skip
    with pytest.raises(InvalidProgram, match=r"paths\[0\].filter: not JSON"):
        cf.step_from_form(split, "s")
    assert cf.split_amount(7200) == ("2", "hours") and cf.split_amount(90) == ("1.5", "minutes")


def test_settings_fields_round_trip_through_the_form() -> None:
    stored = {**_canvas(), "conversion": {"event": "upgraded", "window_seconds": 5400},
              "reentry": {"allowed": True, "after_days": 7}}  # fmt: skip
    fields = cf.fields_of_settings(stored)
    assert fields["conversion_kind"] == "event" and fields["conversion_window_amount"] == "90"
    assert fields["conversion_window_unit"] == "minutes" and fields["reentry_after_days"] == "7"
    again = cf.settings_from_form({**fields, "name": "C", "exit_events": ""}, stored)
    assert again["conversion"] == stored["conversion"] and again["reentry"] == stored["reentry"]
    spec = parse_canvas(again)
    assert spec.reentry and spec.reentry_after_seconds == 7 * 86400
    assert spec.conversion is not None and spec.conversion.window_seconds == 5400
    none = cf.settings_from_form({"name": "C", "conversion_kind": "none"}, stored)
    assert "conversion" not in none and none["reentry"] == {"allowed": False, "after_days": 0}
    assert cf.fields_of_settings(_canvas())["conversion_kind"] == "none"


def test_purchase_entries_and_decisions_round_trip_through_the_forms() -> None:
    split = {"id": "d", "name": "D", "type": "decision_split", "purchase": "*", "within_seconds": 60}
    fields = cf.fields_of_step(split)
    assert fields["purchase"] == "*" and cf.step_from_form(fields, "d") == split
    entry = {"type": "event", "purchase": "sku-1"}
    assert cf.entry_from_form(cf.fields_of_entry(entry), None) == entry
    stored = {**_canvas(), "exit": {"purchases": ["*"]}}
    kept = cf.settings_from_form({"name": "C", "exit_events": "quit"}, stored)
    assert kept["exit"] == {"purchases": ["*"], "events": ["quit"], "leaves_audience": False}


def test_form_numbers_are_bounded_and_ascii() -> None:
    wait = {"id": "w", "name": "W", "type": "delay", "seconds": 60}
    for position in ("split:path:²", "split:path:99", "split:else²"):
        with pytest.raises(InvalidProgram, match="no such position"):
            cf.insert_step(_canvas(), wait, position)
    assert cf.path_count({"path_count": "9" * 40}) == 0 and cf.path_count({"path_count": "²"}) == 0
    assert cf.path_count({"path_count": "999"}) == cf.MAX_PATHS and cf.path_count({"path_count": "3"}) == 3
    for amount in ("nan", "inf", "1e400", "-1"):
        step = cf.step_from_form({"type": "delay", "delay_amount": amount, "delay_unit": "days"}, "w")
        with pytest.raises(InvalidProgram, match=r"steps\[0\].seconds: must be a number from 0 to"):
            parse_canvas({"name": "C", "entry": {"type": "api"}, "steps": [step]})
    ten_years_and_a_day = {"allowed": True, "after_days": 3651}
    with pytest.raises(InvalidProgram, match=r"reentry\.after_days: must be a number from 0 to 3,650"):
        parse_canvas({**_canvas(), "reentry": ten_years_and_a_day})


def test_entry_times_outside_years_1_to_9999_are_refused_and_stored_ones_still_show() -> None:
    for time in (1e300, -1e300, "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00"):
        entry = {"type": "schedule", "time": time}
        with pytest.raises(InvalidProgram, match=r"entry\.time: .*year 1 to 9999"):
            parse_canvas({**_canvas(), "entry": entry})
        assert cf.fields_of_entry(entry)["entry_time"][:4] in ("9999", "0001")  # shown at the range's end


def test_a_recurring_schedule_entry_round_trips_through_the_form() -> None:
    entry = {"type": "schedule", "time": "2030-01-01T10:00:00+00:00", "every": "weekly", "until": 1.9e9}
    fields = cf.fields_of_entry(entry)
    assert fields["entry_every"] == "weekly"
    assert cf.entry_from_form(fields, entry) == entry  # `until` is the API's: the form keeps it
    once = cf.entry_from_form({**fields, "entry_every": ""}, entry)
    assert "every" not in once and parse_canvas({**_canvas(), "entry": once}).entry.every is None


def test_a_delay_until_a_time_in_utc_round_trips_through_the_form() -> None:
    step = {"id": "w", "name": "W", "type": "delay", "until": "12:00", "in_local_time": False}
    assert cf.step_from_form(cf.fields_of_step(step), "w") == step
    local = {**step, "in_local_time": True}
    assert "in_local_time" not in cf.step_from_form(cf.fields_of_step(local), "w")  # the default
    assert parse_canvas({**_canvas(), "steps": [step]}).steps["w"].in_local_time is False
