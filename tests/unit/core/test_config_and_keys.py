"""Settings parsing, secrets, key hashing and quota windows."""

from __future__ import annotations

import pytest

from cohorthub import keys
from cohorthub.config import Secret, Settings, _duration
from cohorthub.partners.model import REGISTRY, hour_window


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("24h", 86400.0), ("2d", 172800.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert _duration(text) == seconds


def test_settings_from_env_reads_typed_values_and_overrides_win() -> None:
    env = {
        "COHORTHUB_DATABASE_URL": "postgresql://x@h/db",
        "COHORTHUB_PUBLIC_URL": "https://api.example.com/",
        "COHORTHUB_PARTNER_HOURLY_QUOTA": "10",
        "COHORTHUB_KEY_ROTATION_GRACE": "1h",
    }
    s = Settings.from_env(env, database_url="sqlite:///other.sqlite")
    assert s.database_url == "sqlite:///other.sqlite"
    assert s.public_url == "https://api.example.com"
    assert s.partner_hourly_quota == 10
    assert s.key_rotation_grace_seconds == 3600.0


def test_settings_default_to_the_embedded_sqlite_file() -> None:
    assert Settings.from_env({}).database_url == "sqlite:///var/cohorthub.sqlite"


def test_secret_never_prints() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert secret.reveal() == "hunter2"


def test_keys_are_random_and_hash_compare() -> None:
    a, b = keys.new_key(), keys.new_key()
    assert a != b and len(a) == 36
    assert keys.matches(a, keys.hash_key(a))
    assert not keys.matches(b, keys.hash_key(a))
    assert keys.hash_key(a) != a


def test_hour_window() -> None:
    assert hour_window(7200.0) == (7200, 3600)
    assert hour_window(7200.0 + 3599.5) == (7200, 1)


def test_registry_has_filter_names() -> None:
    assert REGISTRY["heap"].filter_name == "Heap Cohorts"
    assert REGISTRY["mixpanel"].filter_name == "Mixpanel Cohorts"
