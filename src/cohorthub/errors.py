"""The error tree shared by every cohorthub package.

    CohorthubError
    ├── InvalidInput            400: a request or command that breaks a documented rule
    ├── Unauthorized            401: a key that is wrong, expired or not enabled
    ├── Forbidden               403: a valid key without the permission
    ├── NotFound                404: a named thing that does not exist
    ├── Conflict                409: a change that clashes with existing state
    ├── PayloadTooLarge         413: a body over the configured limit
    ├── UnsupportedMediaType    415: a body that is not JSON
    │   └── UnsupportedEncoding     415: a body compressed in a way the server cannot read
    ├── ResourceLocked          423: a cohort another writer holds for too long
    └── RateLimited             429: a partner key over its hourly quota

Each package subclasses these (e.g. `cohorts.errors.InvalidCohortRequest(InvalidInput)`);
the HTTP edge maps by class, the CLI maps to exit codes by class.
"""

from __future__ import annotations


class CohorthubError(Exception):
    """Base of every error cohorthub raises on purpose."""

    status = 500

    def __init__(self, message: str, *, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class InvalidInput(CohorthubError):
    """The request breaks a documented rule; nothing was changed."""

    status = 400


class Unauthorized(CohorthubError):
    """A credential is wrong, expired, revoked or not enabled."""

    status = 401


class Forbidden(CohorthubError):
    """A valid credential lacks the permission the endpoint needs."""

    status = 403


class NotFound(CohorthubError):
    """A named thing does not exist."""

    status = 404


class Conflict(CohorthubError):
    """The change clashes with existing state."""

    status = 409


class PayloadTooLarge(CohorthubError):
    """The body is larger than the configured limit."""

    status = 413


class UnsupportedMediaType(CohorthubError):
    """The body is not declared as JSON."""

    status = 415


class UnsupportedEncoding(UnsupportedMediaType):
    """The body's Content-Encoding is not one the server decodes; `accepted`: those it does."""

    def __init__(self, message: str, *, accepted: str) -> None:
        super().__init__(message)
        self.accepted = accepted


class ResourceLocked(CohorthubError):
    """Another writer holds the resource longer than the lock timeout."""

    status = 423

    def __init__(self, message: str = "Resource locked", *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlockVictim(ResourceLocked):
    """PostgreSQL rolled the whole transaction back to break a deadlock: running it again is safe."""


class RateLimited(CohorthubError):
    """A partner key used up its hourly quota."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
