"""Currents errors.

CohorthubError
├── InvalidInput
│   └── InvalidConnector      a connector setting breaks a rule (URL, kind, events, batch size)
└── NotFound
    └── ConnectorNotFound     no connector with that id (in that workspace)
"""

from __future__ import annotations

from cohorthub.errors import InvalidInput, NotFound


class InvalidConnector(InvalidInput):
    """A connector setting breaks a rule; nothing was changed."""


class ConnectorNotFound(NotFound):
    """No connector has that id (in the caller's workspace)."""
