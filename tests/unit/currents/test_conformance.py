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


def test_user_orphan_custom_http_shape() -> None:
    """Avro-only in Braze; cohorthub sends it in the Custom HTTP shape documented in docs/currents.md."""
    e = _emitted(
        envelope.user_orphan(
            workspace_id=WS, user=USER, orphaned_by_id="639a35d192b0df004d06514d", time=1.5e9
        )
    )
    assert e["event_type"] == "users.UserOrphan"
    assert _shape(e)["top"] == {
        "event_type": "str",
        "id": "str",
        "time": "number",
        "user": "dict",
        "properties": "dict",
    }
    assert e["properties"] == {"app_group_id": WS, "orphaned_by_id": "639a35d192b0df004d06514d"}
    assert e["user"]["user_id"] == "639a35d192b0df004d06514c"
