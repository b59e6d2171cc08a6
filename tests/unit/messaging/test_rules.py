"""Pure messaging rules: Liquid, campaign and Canvas validation, audiences, schedules, tracking, MIME."""

from __future__ import annotations

import email
import json
import time
from pathlib import Path
from typing import Any

import pytest

from cohorthub.messaging.audience import audience_filter, quiet_until, unreachable_reason
from cohorthub.messaging.canvas import parse_canvas
from cohorthub.messaging.email import build_email
from cohorthub.messaging.errors import InvalidProgram, InvalidTemplate
from cohorthub.messaging.events import FIELDS, Source, message_event
from cohorthub.messaging.liquid import MessageAborted, RenderFailed, compile_template
from cohorthub.messaging.model import Audience, EmailContent, QuietHours, parse_campaign
from cohorthub.messaging.outgoing import Item, outcome_events
from cohorthub.messaging.ports import Outcome, UserRow
from cohorthub.messaging.scheduler import next_occurrence
from cohorthub.messaging.tracking import Tracker

TRACKER = Tracker(base_url="https://hub.test", secret=b"k")


def _render(source: str, **values: Any) -> str:
    return compile_template(source, path="t").render(values)


def test_braze_paths_defaults_and_properties() -> None:
    source = (
        "{{${first_name} | default: 'there'}} {{custom_attribute.${plan}}} {{api_trigger_properties.${c}}}"
    )
    assert _render(
        source, first_name="", custom_attribute={"plan": "gold"}, api_trigger_properties={"c": 7}
    ) == ("there gold 7")
    assert _render("{{custom_attribute.${my attr}}}", custom_attribute={"my attr": "x"}) == "x"
    assert _render("{% if ${language} == 'en' %}Hi{% else %}Hola{% endif %}", language="es") == "Hola"


@pytest.mark.parametrize(
    ("source", "where"),
    [
        ("ok\n  {{ ${first_name} ", "line 2, column 3"),
        ("{% if %}", "line 1, column 4"),
        ("a {{ x | nope }}", "1, column 10"),
    ],
)
def test_invalid_liquid_names_line_and_column(source: str, where: str) -> None:
    with pytest.raises(InvalidTemplate, match=where):
        compile_template(source, path="email.body")


def test_abort_message_stops_the_message_with_its_reason() -> None:
    template = compile_template(
        "{% unless ${plan} %}{% abort_message('no plan') %}{% endunless %}Go", path="t"
    )
    assert template.render({"plan": "gold"}) == "Go"
    with pytest.raises(MessageAborted, match="no plan"):
        template.render({})
    with pytest.raises(RenderFailed):
        compile_template("{{ 1 | divided_by: 0 }}", path="t").render({})


def test_campaign_validation_names_the_field() -> None:
    base = {"name": "n", "channel": "email", "email": {"from": "a@b.co", "subject": "s", "body": "b"}}
    assert parse_campaign(base).channel == "email"
    for bad, path in [
        ({**base, "channel": "sms"}, "channel"),
        ({**base, "email": {"from": "nope", "subject": "s", "body": "b"}}, "email.from"),
        ({**base, "delivery": {"type": "scheduled"}}, "delivery.time"),
        ({**base, "quiet_hours": {"start": 25, "end": 1}}, "quiet_hours.start"),
        ({"name": "n", "channel": "webhook", "webhook": {"url": "ftp://x"}}, "webhook.url"),
    ]:
        with pytest.raises(InvalidProgram) as info:
            parse_campaign(bad)
        assert info.value.path == path


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://hooks.\x0fexample/x", "control characters"),
        ("https://hooks..example/x", "invalid host name"),
        ("https://hooks.example:99999/x", "not a valid URL"),
        ("https://hooks.example/a b", "spaces"),
    ],
)
def test_a_webhook_url_no_request_can_be_sent_to_is_refused_when_given(url: str, why: str) -> None:
    with pytest.raises(InvalidProgram, match=why) as info:
        parse_campaign({"name": "n", "channel": "webhook", "webhook": {"url": url}})
    assert info.value.path == "webhook.url"


def test_a_webhook_url_with_liquid_is_checked_once_rendered_not_when_given() -> None:
    url = "https://hooks.example/{{${user_id}}}?name={{${first_name} | url_encode}}"
    campaign = parse_campaign({"name": "n", "channel": "webhook", "webhook": {"url": url}})
    assert campaign.channel == "webhook"


def _step(step_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "delay", "seconds": 1, **extra}


def test_canvas_graph_refuses_cycles_unknown_and_unreachable_steps() -> None:
    entry = {"type": "api"}
    ok = parse_canvas({"name": "c", "entry": entry, "steps": [_step("a", next="b"), _step("b")]})
    assert ok.first_step == "a"
    for steps, text in [
        ([_step("a", next="b"), _step("b", next="a")], "cycle: a → b → a"),
        ([_step("a", next="zz")], "unknown step zz"),
        ([_step("a"), _step("b")], "unreachable from first_step: b"),
    ]:
        with pytest.raises(InvalidProgram, match=text):
            parse_canvas({"name": "c", "entry": entry, "steps": steps})


def _user(**kw: Any) -> UserRow:
    base: dict[str, Any] = {
        "num": 1,
        "braze_id": "b",
        "external_id": "u",
        "email": "u@x.co",
        "email_subscribe": None,
        "time_zone": None,
        "attributes": {},
        "custom_attributes": {},
    }
    return UserRow(**{**base, **kw})


def test_reachability_and_audience_filters() -> None:
    assert unreachable_reason(_user(), "email", "subscribed") is None
    assert unreachable_reason(_user(email="bad"), "email", "subscribed") == "no valid e-mail address"
    assert unreachable_reason(_user(email_subscribe="unsubscribed"), "email", "subscribed") == "unsubscribed"
    assert unreachable_reason(_user(email_subscribe="unsubscribed"), "email", "all") is None
    assert unreachable_reason(_user(), "email", "opted_in") == "not opted in"
    assert audience_filter(Audience()) is None
    two = audience_filter(Audience(segment_ids=("a", "b"), filter={"type": "x"}))
    assert two == {
        "and": [{"or": [{"type": "segment", "segment_id": s, "op": "includes"} for s in "ab"]}, {"type": "x"}]
    }


def test_quiet_hours_and_recurrence() -> None:
    night = 1_700_000_000 - 1_700_000_000 % 86400 + 23 * 3600  # 23:00 UTC
    end = quiet_until(QuietHours(22, 7), "UTC", night)
    assert end == night + 8 * 3600
    assert quiet_until(QuietHours(22, 7), "UTC", night - 12 * 3600) is None
    assert next_occurrence(0, "daily", 10) == 86400
    assert next_occurrence(0, "weekly", 86400) == 7 * 86400
    assert next_occurrence(100, "daily", 50) == 100  # not started yet: the first occurrence
    assert next_occurrence(0, "daily", 86400) == 2 * 86400  # strictly later
    year_1 = -62_135_596_800.0  # computed, not stepped: ~740k days in no time
    assert next_occurrence(year_1, "daily", 1_700_000_000) == 1_700_006_400
    jan_31 = 1_706_659_200.0  # 2024-01-31T00:00Z: later months keep the 28th
    assert next_occurrence(jan_31, "monthly", jan_31) == 1_709_078_400  # 2024-02-28
    assert next_occurrence(jan_31, "monthly", 1_709_078_400) == 1_711_584_000  # 2024-03-28
    assert next_occurrence(253_402_214_400.0, "monthly", 253_402_214_400.0) is None  # 9999-12-31: no 10000
    assert next_occurrence(253_402_214_400.0, "daily", 253_402_214_400.0) is None


def test_tracking_links_are_signed_and_email_is_multipart_with_rfc8058_headers() -> None:
    url = TRACKER.click_url(5, "https://shop.test/a")
    sig = url.split("/")[6].split("?")[0]
    assert TRACKER.verify("c", 5, sig, "https://shop.test/a")
    assert not TRACKER.verify("c", 6, sig, "https://shop.test/a")
    assert not TRACKER.verify("c", 5, sig, "https://evil.test/")
    assert not TRACKER.verify("c", 5, "é" + sig[1:], "https://shop.test/a")  # not ASCII: False, no TypeError
    assert not TRACKER.verify("c", 5, "\ud800", "https://shop.test/a")  # nor a lone surrogate
    out = build_email(
        sender="Shöp <news@shop.test>",
        to="u@x.co",
        subject="Olá",
        html='<a href="https://shop.test/a">x</a>',
        text=None,
        reply_to=None,
        headers={"X-Tag": "t"},
        send_row_id=5,
        tracker=TRACKER,
        list_unsubscribe=True,
        message_id_domain="shop.test",
    )
    msg = email.message_from_bytes(out.data)
    assert out.sender == "news@shop.test"
    assert str(email.header.make_header(email.header.decode_header(msg["Subject"]))) == "Olá"
    assert msg["List-Unsubscribe"] == f"<{TRACKER.unsubscribe_url(5)}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = (p.get_payload(decode=True).decode() for p in msg.walk() if not p.is_multipart())
    assert plain.strip() == "x"
    assert TRACKER.click_url(5, "https://shop.test/a").replace("&", "&") in html and "/t/o/5/" in html


SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "reference" / "currents-samples" / "custom-http"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the Currents samples are not beside the repository")
def test_message_event_fields_are_those_of_the_currents_samples() -> None:
    for event_type, fields in FIELDS.items():
        *folders, name = event_type.split(".")
        sample = json.loads((SAMPLES.joinpath(*folders) / f"{name}.json").read_text())
        assert set(fields) | {"app_group_id"} <= set(sample["properties"]), event_type
    source = Source("ws", campaign_id="c", campaign_name="n")
    event = message_event("users.messages.email.Send", source, {"user_id": "b"}, time=1, dispatch_id="d",
                          email_address="a@b.co", bogus=1)  # fmt: skip
    assert event.properties == {"app_group_id": "ws", "campaign_id": "c", "campaign_name": "n",
                                "dispatch_id": "d", "email_address": "a@b.co"}  # fmt: skip


def test_an_email_sent_again_on_a_new_connection_reports_a_retry_before_its_outcome() -> None:
    item = Item(Source("ws", campaign_id="c"), _user(), "d", EmailContent("a@shop.test", "S", "B"))
    for outcome, last in (
        (Outcome("delivered", retries=1), "Delivery"),
        (Outcome("failed", "x", retries=1), "Bounce"),
    ):
        types = [e.event_type for e in outcome_events(item, outcome, 1.0)]
        assert types == ["users.messages.email.Retry", f"users.messages.email.{last}"]
    assert [e.event_type for e in outcome_events(item, Outcome("delivered"), 1.0)] == [
        "users.messages.email.Delivery"
    ]


@pytest.mark.parametrize(
    ("source", "why"),
    [("{% for i in (1..1000000000) %}x{% endfor %}", "loop iteration limit"),
     ("{% for i in (1..400) %}{% for j in (1..400) %}{% endfor %}{% endfor %}", "loop iteration limit"),
     ("{% for i in (1..90000) %}" + "fifty chars, of which this line writes fifty chars." + "{% endfor %}",
      "output stream limit")],
)  # fmt: skip
def test_a_render_is_bounded_in_loop_iterations_and_output(source: str, why: str) -> None:
    """A template that would loop for minutes fails for that user at once instead of stalling every send."""
    template = compile_template(source, path="email.body")
    with pytest.raises(RenderFailed, match=why):
        template.render({})
    assert len(compile_template("{% for i in (1..1000) %}x{% endfor %}", path="b").render({})) == 1000


@pytest.mark.parametrize(
    "source",
    ["{{ (1..20000000) | sort | size }}",
     "{{ (1..100000000) | join: ',' | size }}",
     "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..24) %}{% assign s = s | append: s %}{% endfor %}"
     "{{ s | size }}",
     "{% assign n = 2 %}{% for i in (1..22) %}{% assign n = n | times: n %}{% endfor %}{{ n | size }}"],
)  # fmt: skip
def test_a_render_is_bounded_in_the_values_filters_take_and_make(source: str) -> None:
    """A filter that would build a huge value (a sorted range of millions, a string doubled to 167 MB,
    a number of four million bits) fails for that user at once instead of taking seconds and gigabytes."""
    template = compile_template(source, path="webhook.body")
    started = time.perf_counter()
    with pytest.raises(RenderFailed, match=r"line 1, column \d+: .*too large"):
        template.render({})
    assert time.perf_counter() - started < 1.0
    assert compile_template("{{ (1..1000) | join: '' | size }}", path="b").render({}) == "2893"
