"""Random identifiers made cheaply: hex digits from a buffered system source, and UUIDv7 text.

Drawing randomness from the system a block at a time (a call per id cost more than the id) keeps
ids unpredictable; each thread has its own buffer. A UUIDv7 (RFC 9562) starts with the Unix time
in milliseconds, so ids made one after another sort together and append to the end of an index
instead of landing anywhere in it.
"""

from __future__ import annotations

import secrets
import threading
import time

#: Hex digits drawn from the system at a time.
_BLOCK_DIGITS = 8192


class _Entropy(threading.local):
    """Random hex digits drawn from the system a block at a time."""

    block = ""
    at = 0
    ms = -1  # the millisecond of the last UUIDv7, and its first 15 characters
    stamp = ""

    def hex(self, digits: int) -> str:
        if digits > _BLOCK_DIGITS // 2:  # a large draw on its own, the buffer kept for small ones
            return secrets.token_hex((digits + 1) // 2)[:digits]
        at = self.at
        if at + digits > len(self.block):
            self.block, at = secrets.token_hex(_BLOCK_DIGITS // 2), 0
        self.at = at + digits
        return self.block[at : at + digits]


_entropy = _Entropy()
#: The variant (10xx in binary) of an RFC 9562 UUID with two random bits, for each random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def random_hex(digits: int) -> str:
    """`digits` random hexadecimal digits (4 bits each)."""
    return _entropy.hex(digits)


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
