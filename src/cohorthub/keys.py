"""Secret keys: generated once, shown once, stored as SHA-256, compared in constant time.

Keys are 122-bit random UUIDs (the format partners already handle), so a fast hash is
enough: there is nothing to brute-force that a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def new_key() -> str:
    """A fresh random key in the UUID format Braze-compatible clients expect."""
    return str(uuid.uuid4())


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def matches(key: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_key(key), stored_hash)


#: Hex digits of a key's SHA-256 kept as its fingerprint: enough to tell keys apart, not to recover one.
FINGERPRINT_LENGTH = 16


def fingerprint(key: str) -> str:
    """A short, non-secret name of a key: the start of its stored hash."""
    return hash_key(key)[:FINGERPRINT_LENGTH]


def same_secret(given: str, expected: str) -> bool:
    """Whether two secrets (tokens, signatures) are equal, in constant time, whatever text `given` holds.

    `hmac.compare_digest` refuses two strings with non-ASCII characters (a TypeError: a 500 for any
    client that sends one); their UTF-8 bytes compare the same way (lone surrogates kept).
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
