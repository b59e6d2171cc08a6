"""Messaging errors.

InvalidInput
├── InvalidProgram          a campaign or Canvas definition breaks a rule (names the field)
│   └── InvalidTemplate     Liquid that does not parse (names line and column)
├── InvalidSendRequest      a Braze send call breaks a rule (Braze's message text)
NotFound
└── ProgramNotFound         no campaign or Canvas with that id in the workspace
Conflict
└── ProgramStateConflict    launch/pause/resume not allowed from the current status
"""

from __future__ import annotations

from cohorthub.errors import Conflict, InvalidInput, NotFound


class InvalidProgram(InvalidInput):
    """A campaign or Canvas definition breaks a rule; the message starts with the field's path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class InvalidTemplate(InvalidProgram):
    """Liquid that does not parse: `path: line L, column C: reason`."""

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        super().__init__(path, f"line {line}, column {column}: {reason}")
        self.line = line
        self.column = column


class InvalidSendRequest(InvalidInput):
    """A Braze messaging call breaks a rule; nothing was sent."""


class ProgramNotFound(NotFound):
    """No campaign or Canvas with that id in the workspace."""


class ProgramStateConflict(Conflict):
    """The campaign or Canvas cannot make that move from its current status."""
