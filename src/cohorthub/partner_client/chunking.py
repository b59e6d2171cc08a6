"""Packing membership changes into requests of at most 1,000 identifiers (pure).

The limit counts every identifier of a request: ``user_ids`` + ``device_ids`` + ``aliases``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import DEVICE_ID, EXTERNAL_ID, alias_label

MAX_IDS_PER_REQUEST = 1000


@dataclass
class Chunk:
    """The identifiers of one ``/cohorts/users`` request, grouped by namespace."""

    should_remove: bool
    groups: dict[str, list[str]] = field(default_factory=dict)
    count: int = 0

    def add(self, namespace: str, ids: Sequence[str]) -> None:
        """Append identifiers of one namespace."""
        self.groups.setdefault(namespace, []).extend(ids)
        self.count += len(ids)

    def to_change(self) -> dict[str, Any]:
        """The ``cohort_changes`` element for this chunk (all three id keys, as real partners send)."""
        aliases = [
            {"alias_name": name, "alias_label": label}
            for namespace, names in self.groups.items()
            if (label := alias_label(namespace)) is not None
            for name in names
        ]
        return {
            "user_ids": list(self.groups.get(EXTERNAL_ID, ())),
            "device_ids": list(self.groups.get(DEVICE_ID, ())),
            "aliases": aliases,
            "should_remove": self.should_remove,
        }


def chunk_changes(
    groups: Iterable[tuple[str, Sequence[str]]], *, should_remove: bool, limit: int = MAX_IDS_PER_REQUEST
) -> Iterator[Chunk]:
    """Yield chunks of at most ``limit`` identifiers, filling each across namespaces."""
    if limit < 1:
        raise ValueError("limit must be positive")
    current = Chunk(should_remove)
    for namespace, ids in groups:
        start = 0
        while start < len(ids):
            take = min(limit - current.count, len(ids) - start)
            current.add(namespace, ids[start : start + take])
            start += take
            if current.count == limit:
                yield current
                current = Chunk(should_remove)
    if current.count:
        yield current
