"""Partner errors, with the exact texts partners already handle."""

from __future__ import annotations

from cohorthub.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthorized


class UnknownPartner(NotFound):
    """The path names no registered partner."""


class InvalidPartnerApiKey(Unauthorized):
    """`Invalid Partner API key`."""

    def __init__(self) -> None:
        super().__init__("Invalid Partner API key")


class InvalidClientSecret(Unauthorized):
    """`Invalid client secret`."""

    def __init__(self) -> None:
        super().__init__("Invalid client secret")


class PartnerNotEnabled(Unauthorized):
    """`Partner not enabled for client with client secret: <secret>`."""

    def __init__(self, client_secret: str) -> None:
        super().__init__(f"Partner not enabled for client with client secret: {client_secret}")


class PartnerAlreadyEnabled(Conflict):
    """Enabling twice would orphan the key shown the first time."""


class PartnerNotConfigured(InvalidInput):
    """A rotate or disable for a partner that is not set up for the workspace."""


class PartnerQuotaExceeded(RateLimited):
    """The partner key used its hourly request quota."""


class InvalidPartnerKeyValue(InvalidInput):
    """A partner key value given to `partner add-key` that cannot be a key."""


class PartnerKeyAlreadyRegistered(Conflict):
    """The same partner key value is registered already."""


class InvalidAuthMode(InvalidInput):
    """An authentication mode that does not exist."""
