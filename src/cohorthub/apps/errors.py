"""SDK app errors.

InvalidInput
├── InvalidApp              an app or origin setting that breaks a rule (400)
└── InvalidSdkRequest       a data request the SDK must not retry (answered as `{"error": code}`)
Unauthorized
└── InvalidSdkKey           no app has that SDK API key (answered as `{"error": "invalid_api_key"}`)
Forbidden
└── OriginNotAllowed        the page's origin is not among the workspace's allowed origins (403)
"""

from __future__ import annotations

from cohorthub.errors import Forbidden, InvalidInput, Unauthorized


class InvalidApp(InvalidInput):
    """An app name or origin that breaks a rule."""


class InvalidSdkRequest(InvalidInput):
    """A data request with no usable device or shape; `code` is what the SDK logs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidSdkKey(Unauthorized):
    """No app has that SDK API key."""

    code = "invalid_api_key"


class OriginNotAllowed(Forbidden):
    """The request's Origin is not allowed for the app's workspace."""
