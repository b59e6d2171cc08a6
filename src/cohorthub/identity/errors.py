"""Identity errors.

InvalidInput
├── InvalidUserRequest      a /users/* request that breaks a documented rule (400)
└── InvalidImportFile       an import file that cannot be read as a whole (400)
UnsupportedMediaType
└── UnsupportedImportType   an import that is neither CSV nor JSON lines (415)
ResourceLocked
└── UsersLocked             another writer holds these users or identifiers too long (423)
"""

from __future__ import annotations

from cohorthub.errors import InvalidInput, ResourceLocked, UnsupportedMediaType


class InvalidUserRequest(InvalidInput):
    """A /users/* request that breaks a documented rule; nothing was changed."""


class UsersLocked(ResourceLocked):
    """Another writer held these users or identifiers longer than the lock timeout."""


class InvalidImportFile(InvalidInput):
    """An import file that cannot be read as a whole (empty, not UTF-8, no identifier); nothing written."""


class UnsupportedImportType(UnsupportedMediaType):
    """An import body that is declared neither CSV nor JSON lines."""
