"""Identifiers made cheaply: random hex digits from a buffered system source, UUIDv7 text, object ids.

Drawing randomness from the system a block at a time (a call per id cost more than the id) keeps
ids unpredictable; each thread has its own buffer. A UUIDv7 (RFC 9562) starts with the Unix time
in milliseconds, so ids made one after another sort together and append to the end of an index
instead of landing anywhere in it. Object ids (the 12-byte shape of MongoDB's ObjectId, which
Braze's user ids have) do the same with seconds, a random value per process and a counter.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

#: Hex digits drawn from the system at a time.
_BLOCK_DIGITS = 8192


class _Entropy(threading.local):
    """Random hex digits drawn from the system a block at a time; the last UUIDv7's millisecond."""

    block = ""
    at = 0
    ms = -1  # the millisecond of the last UUIDv7, and its first 15 characters
    stamp = ""


_entropy = _Entropy()
#: The variant (10xx in binary) of an RFC 9562 UUID with two random bits, for each random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid7() -> str:
    """A version 7 UUID as text: 48 bits of Unix milliseconds now, then 74 random bits.

    Text is built directly (a `uuid.UUID` cost several times more), the time part once per
    millisecond; the 19 random hex digits give the 12 bits after the version, 2 bits of the
    variant digit, then 60 bits.
    """
    entropy = _entropy
    ms = time.time_ns() // 1_000_000
    if ms != entropy.ms:
        stamp = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        entropy.ms, entropy.stamp = ms, f"{stamp[:8]}-{stamp[8:]}-7"
    at = entropy.at
    if at + 19 > len(entropy.block):
        entropy.block, at = secrets.token_hex(_BLOCK_DIGITS // 2), 0
    entropy.at = at + 19
    h = entropy.block[at : at + 19]
    return f"{entropy.stamp}{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:]}"


class _ObjectIdCounter:
    """A process's 5 random bytes and its 3-byte counter (from a random start), as MongoDB keeps them."""

    _lock: threading.Lock
    process: str
    next: int

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """New values: at start, and in a forked child (which must not repeat its parent's ids)."""
        self._lock = threading.Lock()
        self.process = secrets.token_hex(5)
        self.next = secrets.randbelow(1 << 24)

    def take(self, count: int) -> int:
        """The first of `count` consecutive counter values (modulo 2**24) reserved for the caller."""
        with self._lock:
            first = self.next
            self.next = (first + count) & 0xFFFFFF
        return first


_object_ids = _ObjectIdCounter()
os.register_at_fork(after_in_child=_object_ids.reset)


def object_ids(seconds: float, count: int) -> list[str]:
    """`count` 24-hex ids: 4 bytes of Unix seconds, the process's 5 random bytes, a 3-byte counter.

    Ids a process makes within a second follow one another (until the counter wraps, every 2**24),
    so a unique index on them grows at its end; two processes differ in their random bytes.
    """
    prefix = f"{int(seconds) & 0xFFFFFFFF:08x}{_object_ids.process}"
    first = _object_ids.take(count)
    return [f"{prefix}{(first + i) & 0xFFFFFF:06x}" for i in range(count)]
