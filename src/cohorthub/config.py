"""Settings, read once from the environment into typed values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SQLITE_PATH = Path("var") / "cohorthub.sqlite"


class Secret:
    """A string that never shows itself in reprs, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the wrapped value."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def default_database_url() -> str:
    """The embedded default: a SQLite file under ./var/."""
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def parse_cap(text: str | None) -> tuple[int, float] | None:
    """`3/1d` → (3, 86400.0): at most 3 messages per user and channel per day; None when unset."""
    if not text:
        return None
    count, _, period = text.partition("/")
    return int(count), _duration(period or "1d")


def _duration(text: str) -> float:
    """Parse `90`, `90s`, `15m`, `24h` or `2d` into seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    text = text.strip().lower()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def configured_public_url(env: Mapping[str, str] | None = None) -> str | None:
    """`COHORTHUB_PUBLIC_URL` without a trailing slash, when set."""
    value = (os.environ if env is None else env).get("COHORTHUB_PUBLIC_URL", "").strip()
    return value.rstrip("/") or None


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of the server, with its default."""

    database_url: str = field(default_factory=default_database_url)
    public_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 4 * 1024 * 1024
    partner_hourly_quota: int = 250_000
    key_rotation_grace_seconds: float = 24 * 3600.0
    lock_timeout_seconds: float = 5.0
    identifier_max_length: int = 512
    compaction_threshold: int = 50_000
    outbox_retention_seconds: float = 7 * 86400.0
    request_log: bool = True  # one log line per HTTP request (`serve --no-request-log` turns it off)
    sdk_dedup_window_seconds: float = 24 * 3600.0
    sdk_max_body_bytes: int = 1024 * 1024
    import_max_bytes: int = 100 * 1024 * 1024  # a POST /users/import body
    smtp_url: str = "smtp://127.0.0.1:25"
    smtp_timeout_seconds: float = 30.0
    webhook_timeout_seconds: float = 10.0
    messaging_poll_seconds: float = 0.2
    messaging_batch: int = 500  # messages per ledger batch (at most two are in doubt after a kill)
    messaging_lease_seconds: float = 60.0
    messaging_max_lateness_seconds: float = 3600.0
    frequency_cap: str | None = None  # "N/period", e.g. "3/1d": messages per user and channel

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read `COHORTHUB_*` variables; explicit overrides win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if url := env.get("COHORTHUB_DATABASE_URL"):
            values["database_url"] = url
        if url := env.get("COHORTHUB_PUBLIC_URL"):
            values["public_url"] = url.rstrip("/")
        if url := env.get("COHORTHUB_SMTP_URL"):
            values["smtp_url"] = url
        if cap := env.get("COHORTHUB_FREQUENCY_CAP"):
            values["frequency_cap"] = cap
        ints = {
            "COHORTHUB_MAX_BODY_BYTES": "max_body_bytes",
            "COHORTHUB_PARTNER_HOURLY_QUOTA": "partner_hourly_quota",
            "COHORTHUB_COMPACTION_THRESHOLD": "compaction_threshold",
            "COHORTHUB_SDK_MAX_BODY_BYTES": "sdk_max_body_bytes",
            "COHORTHUB_MESSAGING_BATCH": "messaging_batch",
            "COHORTHUB_IMPORT_MAX_BYTES": "import_max_bytes",
        }
        for var, name in ints.items():
            if var in env:
                values[name] = int(env[var])
        durations = {
            "COHORTHUB_KEY_ROTATION_GRACE": "key_rotation_grace_seconds",
            "COHORTHUB_LOCK_TIMEOUT": "lock_timeout_seconds",
            "COHORTHUB_OUTBOX_RETENTION": "outbox_retention_seconds",
            "COHORTHUB_SDK_DEDUP_WINDOW": "sdk_dedup_window_seconds",
            "COHORTHUB_SMTP_TIMEOUT": "smtp_timeout_seconds",
            "COHORTHUB_WEBHOOK_TIMEOUT": "webhook_timeout_seconds",
            "COHORTHUB_MESSAGING_POLL": "messaging_poll_seconds",
            "COHORTHUB_MESSAGING_LEASE": "messaging_lease_seconds",
            "COHORTHUB_MAX_LATENESS": "messaging_max_lateness_seconds",
        }
        for var, name in durations.items():
            if var in env:
                values[name] = _duration(env[var])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
