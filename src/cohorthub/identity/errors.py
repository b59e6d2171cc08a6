"""Identity errors.

InvalidInput
└── InvalidUserRequest      a /users/* request that breaks a documented rule (400)
ResourceLocked
└── UsersLocked             another writer holds these users or identifiers too long (423)
"""

from __future__ import annotations

from cohorthub.errors import InvalidInput, ResourceLocked


class InvalidUserRequest(InvalidInput):
    """A /users/* request that breaks a documented rule; nothing was changed."""


class UsersLocked(ResourceLocked):
    """Another writer held these users or identifiers longer than the lock timeout."""
