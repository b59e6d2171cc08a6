"""The partner client's error tree.

```
PartnerClientError                 anything this package raises on purpose
├── ConfigurationError             an option or argument that cannot work (id type, interval, URL)
├── SourceError                    the membership source cannot be read or parsed
├── StateError                     the local state file cannot be used
└── ApiError                       the server refused the request or could not be reached
    ├── AuthenticationError        401: wrong partner key or data import key, partner not enabled
    ├── RequestRejected            400: the server names the offending part of the request
    ├── UnexpectedResponse         any other status that retrying will not fix
    └── RetriesExhausted           429/423/5xx/network errors until the retry policy gave up
```
The CLI maps these classes to exit codes; library callers catch the class they care about.
"""

from __future__ import annotations


class PartnerClientError(Exception):
    """Base class of every error raised on purpose by ``cohorthub.partner_client``."""


class ConfigurationError(PartnerClientError):
    """An option or argument that cannot work."""


class SourceError(PartnerClientError):
    """The membership source cannot be read or parsed."""


class StateError(PartnerClientError):
    """The local state file cannot be opened, read or written."""


class ApiError(PartnerClientError):
    """The server refused a request or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.path = path


class AuthenticationError(ApiError):
    """401: the keys are wrong or the partner is not enabled for the workspace."""

    def __init__(self, message: str, *, hint: str, path: str = "") -> None:
        super().__init__(message, status=401, path=path)
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})"


class RequestRejected(ApiError):
    """400: the server rejected the request; ``request_part`` shows what it objected to."""

    def __init__(self, message: str, *, request_part: str, path: str = "") -> None:
        super().__init__(message, status=400, path=path)
        self.request_part = request_part

    def __str__(self) -> str:
        return f"{self.message} (request part: {self.request_part})"


class UnexpectedResponse(ApiError):
    """A status that retrying will not fix and that the protocol does not define."""


class RetriesExhausted(ApiError):
    """A retryable failure (429, 423, 5xx, network) persisted until the retry policy gave up."""

    def __init__(self, message: str, *, status: int | None, attempts: int, path: str = "") -> None:
        super().__init__(message, status=status, path=path)
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{self.message} (gave up after {self.attempts} attempts)"
