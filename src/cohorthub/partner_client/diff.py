"""The membership diff: what entered and what left since the last acknowledged state.

Identifiers are compared exactly (as UTF-8 bytes), never through a lossy hash, so there is no
collision risk. To keep memory flat on large cohorts, identifiers are partitioned by a cheap
checksum (``crc32 & 4095``) into buckets; the current membership is spilled to a temporary file
bucket by bucket, and each bucket is compared with the same bucket of the previous state, which
the state file keeps as one blob per bucket. Only one bucket's sets are in memory at a time.
The inner loops run in C (``map``/``set`` over lists), never in per-identifier Python code.
"""

from __future__ import annotations

import collections
import itertools
import operator
import tempfile
import zlib
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

BUCKET_BITS = 12
BUCKETS = 1 << BUCKET_BITS
_MASK = BUCKETS - 1
SAMPLE_SIZE = 5

BucketKey = tuple[str, int]


def bucket_of(ident: bytes) -> int:
    """The bucket of one identifier (stable across runs and Python versions)."""
    return zlib.crc32(ident) & _MASK


def split_blob(data: bytes) -> list[bytes]:
    """Newline-separated identifiers back into a list (an empty blob is an empty list)."""
    return data.split(b"\n") if data else []


class Spill:
    """An append-only temporary file of byte-string lists, addressed by key."""

    def __init__(self, file: IO[bytes] | None = None) -> None:
        self._file: IO[bytes] = file if file is not None else tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._segments: dict[Hashable, list[tuple[int, int]]] = {}
        self._end = 0
        self._at_end = True  # seeking flushes the write buffer: only seek after a read

    def write(self, key: Hashable, items: list[bytes]) -> None:
        """Append ``items`` under ``key``."""
        if not items:
            return
        data = b"\n".join(items)
        if not self._at_end:
            self._file.seek(self._end)
            self._at_end = True
        self._file.write(data)
        self._segments.setdefault(key, []).append((self._end, len(data)))
        self._end += len(data)

    def segments(self, key: Hashable) -> Iterator[list[bytes]]:
        """Each list written under ``key``, in write order."""
        for offset, length in self._segments.get(key, ()):
            self._at_end = False
            self._file.seek(offset)
            yield self._file.read(length).split(b"\n")

    def read(self, key: Hashable) -> list[bytes]:
        """Everything written under ``key`` as one list."""
        return list(itertools.chain.from_iterable(self.segments(key)))

    def written_keys(self) -> list[Hashable]:
        """The keys written so far, in first-write order."""
        return list(self._segments)

    def close(self) -> None:
        """Delete the temporary file."""
        self._file.close()


class Partitioner:
    """Buckets incoming identifiers into a spill, flushing every ``flush_every`` identifiers."""

    def __init__(self, spill: Spill, *, flush_every: int = 400_000) -> None:
        self._spill = spill
        self._flush_every = flush_every
        self._pending: dict[str, list[list[bytes]]] = {}
        self._appenders: dict[str, list[Callable[[bytes], None]]] = {}
        self._count = 0

    def add(self, namespace: str, ids: list[bytes]) -> None:
        """Bucket a batch of identifiers of one namespace (the loop runs in C)."""
        appenders = self._appenders.get(namespace)
        if appenders is None:
            lists: list[list[bytes]] = [[] for _ in range(BUCKETS)]
            self._pending[namespace] = lists
            appenders = self._appenders[namespace] = [lst.append for lst in lists]
        buckets = map(operator.and_, map(zlib.crc32, ids), itertools.repeat(_MASK))
        collections.deque(map(operator.call, map(appenders.__getitem__, buckets), ids), maxlen=0)
        self._count += len(ids)
        if self._count >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        """Move pending identifiers to the spill."""
        for namespace, lists in self._pending.items():
            for bucket, items in enumerate(lists):
                if items:
                    self._spill.write((namespace, bucket), items)
                    items.clear()
        self._count = 0


class PreviousMembership(Protocol):
    """The last acknowledged membership, readable bucket by bucket."""

    def keys(self) -> Iterable[BucketKey]:
        """The (namespace, bucket) pairs that have members."""
        ...

    def members(self, namespace: str, bucket: int) -> Collection[bytes]:
        """The members of one bucket."""
        ...


class EmptyMembership:
    """No previous state: the first sync."""

    def keys(self) -> Iterable[BucketKey]:
        """No buckets."""
        return ()

    def members(self, namespace: str, bucket: int) -> Collection[bytes]:
        """No members."""
        return ()


@dataclass
class ChangeSet:
    """The adds and removes of a diff, spilled to disk; counts and samples kept in memory."""

    spill: Spill
    members: int = 0
    adds: int = 0
    removes: int = 0
    by_namespace: dict[str, tuple[int, int]] = field(default_factory=dict)
    sample_adds: list[str] = field(default_factory=list)
    sample_removes: list[str] = field(default_factory=list)

    def record(self, namespace: str, adds: list[bytes], removes: list[bytes], members: int) -> None:
        """Add one bucket's outcome."""
        self.members += members
        if not adds and not removes:
            return
        self.spill.write((False, namespace), adds)
        self.spill.write((True, namespace), removes)
        self.adds += len(adds)
        self.removes += len(removes)
        old_adds, old_removes = self.by_namespace.get(namespace, (0, 0))
        self.by_namespace[namespace] = (old_adds + len(adds), old_removes + len(removes))
        _extend_sample(self.sample_adds, namespace, adds)
        _extend_sample(self.sample_removes, namespace, removes)

    def groups(self, *, should_remove: bool) -> Iterator[tuple[str, list[str]]]:
        """The adds (or removes) as (namespace, identifiers) groups, decoded."""
        for key in self.spill.written_keys():
            assert isinstance(key, tuple)
            removed, namespace = key
            if removed is should_remove:
                for items in self.spill.segments(key):
                    yield namespace, b"\n".join(items).decode().split("\n")

    def close(self) -> None:
        """Drop the spill file."""
        self.spill.close()


def _extend_sample(sample: list[str], namespace: str, ids: list[bytes]) -> None:
    for ident in ids[: SAMPLE_SIZE - len(sample)]:
        text = ident.decode()
        sample.append(text if namespace == "external_id" else f"{namespace}={text}")


def diff_bucket(
    current: Iterable[bytes], previous: Collection[bytes]
) -> tuple[list[bytes], list[bytes], int]:
    """Adds, removes and member count of one bucket; ``current`` may repeat identifiers."""
    now = set(current)
    adds = list(now.difference(previous))
    removes = list(itertools.filterfalse(now.__contains__, previous))
    return adds, removes, len(now)


def diff_membership(
    batches: Iterable[tuple[str, list[bytes]]],
    previous: PreviousMembership,
    *,
    spill_factory: Callable[[], Spill] = Spill,
) -> ChangeSet:
    """Compare the current membership (batches of namespace, identifiers) with ``previous``."""
    current = spill_factory()
    try:
        partitioner = Partitioner(current)
        for namespace, ids in batches:
            partitioner.add(namespace, ids)
        partitioner.flush()
        changes = ChangeSet(spill_factory())
        keys: set[BucketKey] = {key for key in current.written_keys() if isinstance(key, tuple)}
        keys.update(previous.keys())
        for namespace, bucket in sorted(keys):
            adds, removes, members = diff_bucket(
                current.read((namespace, bucket)), previous.members(namespace, bucket)
            )
            changes.record(namespace, adds, removes, members)
        return changes
    finally:
        current.close()
