"""Workspace errors."""

from __future__ import annotations

from cohorthub.errors import Forbidden, InvalidInput, NotFound, Unauthorized


class WorkspaceNotFound(NotFound):
    """No workspace has that id."""


class InvalidWorkspace(InvalidInput):
    """A workspace name or key request breaks a rule."""


class InvalidApiKey(Unauthorized):
    """The REST API key is missing, unknown or revoked."""


class PermissionDenied(Forbidden):
    """The REST API key lacks the endpoint's permission."""
