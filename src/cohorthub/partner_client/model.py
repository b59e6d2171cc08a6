"""Values of the cohort sync: identifier namespaces, cohorts, targets and results (pure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXTERNAL_ID = "external_id"
DEVICE_ID = "device_id"
ALIAS_PREFIX = "alias:"
_SYNONYMS = {"external_id": EXTERNAL_ID, "user_id": EXTERNAL_ID, "device_id": DEVICE_ID}


def parse_namespace(text: str) -> str:
    """Normalise an id type (``external_id``, ``device_id``, ``alias:LABEL``) or raise ``ValueError``."""
    value = text.strip()
    lowered = value.lower()
    if lowered in _SYNONYMS:
        return _SYNONYMS[lowered]
    if lowered.startswith(ALIAS_PREFIX):
        label = value[len(ALIAS_PREFIX) :].strip()
        if label and "\n" not in label:
            return ALIAS_PREFIX + label
    raise ValueError(f"unknown id type {text!r}: use external_id, device_id or alias:LABEL")


def alias_label(namespace: str) -> str | None:
    """The alias label of an ``alias:LABEL`` namespace, else ``None``."""
    return namespace[len(ALIAS_PREFIX) :] if namespace.startswith(ALIAS_PREFIX) else None


class Secret:
    """A string that never shows itself in ``repr``/``str`` (keys travel in request bodies only)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the request body only."""
        return self._value

    def fingerprint(self) -> str:
        """A SHA-256 hex digest: lets the state file tell keys apart without storing them."""
        return hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Target:
    """Where and as whom to sync: a server speaking the partner cohort import protocol."""

    endpoint: str
    partner: str
    partner_api_key: Secret
    data_import_key: Secret

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))

    def url(self, path: str) -> str:
        """The absolute URL of a partner path such as ``/cohorts/users``."""
        return f"{self.endpoint}/partners/{self.partner}{path}"


@dataclass(frozen=True)
class Cohort:
    """A cohort as the partner knows it; ``created_at`` defaults to the first sync's time."""

    cohort_id: str
    name: str
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.cohort_id.strip():
            raise ValueError("cohort_id must be a non-empty string")
        if not self.name.strip():
            raise ValueError("name must be a non-empty string")


def iso8601(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z`` (the form real partners send)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class SyncResult:
    """What one sync did (or, with ``dry_run``, would do)."""

    cohort_id: str
    dry_run: bool
    name_sent: bool
    adds: int
    removes: int
    members: int
    requests: int
    duration_s: float
    sample_adds: tuple[str, ...] = ()
    sample_removes: tuple[str, ...] = ()
    by_namespace: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def identifiers_per_s(self) -> float:
        """Identifiers sent per second of wall time."""
        return (self.adds + self.removes) / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``--json``)."""
        return {
            "cohort_id": self.cohort_id,
            "dry_run": self.dry_run,
            "name_sent": self.name_sent,
            "adds": self.adds,
            "removes": self.removes,
            "members": self.members,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "sample_adds": list(self.sample_adds),
            "sample_removes": list(self.sample_removes),
            "by_id_type": {ns: {"adds": a, "removes": r} for ns, (a, r) in self.by_namespace.items()},
        }
