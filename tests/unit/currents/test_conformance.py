"""Emitted events have the keys and JSON types of Braze's Custom HTTP samples (protocol §5.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from cohorthub.currents import envelope

SAMPLES = Path("/work/shared/reference/currents-samples/custom-http")
WS = "f47ac10b58cc4372a5670e02b2c3d479"
USER = envelope.event_user(
    braze_id="639a35d192b0df004d06514c", external_id="e", device_id="d", timezone="UTC"
)
#: Sample fields cohorthub does not know (device and ad-tracking data come from SDKs, not the REST API).
OPTIONAL = {"ad_id", "ad_id_type", "ad_tracking_enabled", "device_model", "os_version", "platform", "app_id"}


def _type(value: Any) -> str:
    return (
        "number" if isinstance(value, int | float) and not isinstance(value, bool) else type(value).__name__
    )


def _shape(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "top": {k: _type(v) for k, v in event.items()},
        "user": {k: _type(v) for k, v in event["user"].items()},
        "properties": {k: _type(v) for k, v in event["properties"].items()},
    }


def _emitted(e: envelope.Envelope) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(e))
    return decoded


CASES = [
    (
        "users/behaviors/CustomEvent.json",
        envelope.custom_event(
            workspace_id=WS, user=USER, name="n", time=1.5e9, custom_properties={"a": 1}, app_id="app"
        ),
    ),
    (
        "users/behaviors/Purchase.json",
        envelope.purchase(
            workspace_id=WS,
            user=USER,
            product_id="p",
            currency="USD",
            price=3.14,
            time=1.5e9,
            purchase_properties={"a": 1},
            app_id="app",
        ),
    ),
]


@pytest.mark.skipif(not SAMPLES.exists(), reason="reference samples not available")
@pytest.mark.parametrize(("sample", "event"), CASES, ids=[c[0] for c in CASES])
def test_emitted_event_matches_the_sample(sample: str, event: envelope.Envelope) -> None:
    expected = _shape(msgspec.json.decode((SAMPLES / sample).read_bytes()))
    got = _shape(_emitted(event))
    assert got["top"] == expected["top"]
    assert set(got["user"]) <= set(expected["user"]) | {"timezone"}
    assert all(expected["user"].get(k, "str") == t for k, t in got["user"].items())
    for key, kind in got["properties"].items():
        assert expected["properties"][key] == kind, key
    assert set(expected["properties"]) - set(got["properties"]) <= OPTIONAL


AVRO = SAMPLES.parent / "avro-json"
#: Identifiers Braze's Custom HTTP shape carries in `user`; `id` and `time` stay on top, the rest of
#: an event's fields go to `properties` (checked below against every pair of samples).
USER_FIELDS = {"user_id", "external_user_id", "device_id", "timezone"}


def _avro(name: str) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode((AVRO / f"{name}.json").read_bytes())
    return decoded


def _keys(event: dict[str, Any]) -> dict[str, set[str]]:
    return {"top": set(event), "user": set(event["user"]), "properties": set(event["properties"])}


def _sample_keys(event_type: str) -> dict[str, set[str]]:
    """The Custom HTTP sample's keys; for an Avro-only type, the Avro fields laid out the same way."""
    path = SAMPLES / (event_type.replace(".", "/") + ".json")
    if path.exists():
        return _keys(msgspec.json.decode(path.read_bytes()))
    avro = set(_avro(event_type))
    return {
        "top": {"event_type", "id", "time", "user", "properties"},
        "user": avro & USER_FIELDS,
        "properties": avro - USER_FIELDS - {"id", "time"},
    }


@pytest.mark.skipif(not AVRO.exists(), reason="reference samples not available")
def test_custom_http_samples_carry_the_avro_identifiers_in_user() -> None:
    pairs = 0
    for path in SAMPLES.rglob("*.json"):
        event = msgspec.json.decode(path.read_bytes())
        if not (AVRO / f"{event['event_type']}.json").exists():
            continue
        pairs += 1
        avro = set(_avro(event["event_type"]))
        assert set(event["user"]) <= USER_FIELDS, path
        assert avro & USER_FIELDS <= set(event["user"]), path
        assert not avro & USER_FIELDS & set(event["properties"]), path
    assert pairs > 50


#: GlobalStateChange fields of a message-driven change (cohorthub's changes come from the REST API).
MESSAGE_FIELDS = {
    "app_id",
    "campaign_id",
    "campaign_name",
    "canvas_id",
    "canvas_name",
    "canvas_step_id",
    "canvas_step_name",
    "canvas_variation_id",
    "canvas_variation_name",
    "message_variation_id",
    "message_variation_name",
    "send_id",
}
ORPHAN = envelope.user_orphan(
    workspace_id=WS, user=USER, orphaned_by_id="639a35d192b0df004d06514d", time=1.5e9
)
DELETE = envelope.user_delete_request(
    workspace_id=WS, user=envelope.event_user(braze_id="639a35d192b0df004d06514c"), time=1.5e9
)
SUBSCRIBE = envelope.email_subscription_change(
    workspace_id=WS, user=USER, state="unsubscribed", email="a@example.com", time=1.5e9
)
KEYED = [
    (ORPHAN, {"app_id"}, {"timezone"}),
    (DELETE, set(), set()),
    (SUBSCRIBE, MESSAGE_FIELDS, {"device_id"}),
]


@pytest.mark.skipif(not AVRO.exists(), reason="reference samples not available")
@pytest.mark.parametrize(("event", "absent", "extra_user"), KEYED, ids=[k[0].event_type for k in KEYED])
def test_emitted_event_has_the_key_set_of_its_sample(
    event: envelope.Envelope, absent: set[str], extra_user: set[str]
) -> None:
    """Key by key: every key of the sample is emitted (but the documented absent ones), and no other."""
    expected = _sample_keys(event.event_type)
    got = _keys(_emitted(event))
    assert got["top"] == expected["top"]
    assert got["user"] == expected["user"] | (extra_user & set(event.user))
    assert got["properties"] == expected["properties"] - absent


def test_user_orphan_custom_http_values() -> None:
    e = _emitted(ORPHAN)
    assert e["properties"] == {"app_group_id": WS, "orphaned_by_id": "639a35d192b0df004d06514d"}
    assert e["user"] == {
        "user_id": "639a35d192b0df004d06514c",
        "external_user_id": "e",
        "device_id": "d",
        "timezone": "UTC",
    }


def test_email_subscription_change_values() -> None:
    e = _emitted(SUBSCRIBE)
    assert e["properties"] == {
        "app_group_id": WS,
        "channel": "email",
        "channel_identifier": "a@example.com",
        "email_address": "a@example.com",
        "state_change_source": "REST API",
        "subscription_status": "Unsubscribed",
    }
    expected = _shape(
        msgspec.json.decode((SAMPLES / "users/behaviors/subscription/GlobalStateChange.json").read_bytes())
    )
    got = _shape(e)
    assert all(expected["properties"][k] == t for k, t in got["properties"].items())
    assert all(expected["user"][k] == t for k, t in got["user"].items() if k != "device_id")
