"""Segment errors.

InvalidInput
└── InvalidSegment          400: a definition that breaks a rule (with the path to the node)
    └── SegmentCycle        400: a segment that would include itself through membership leaves
NotFound
├── SegmentNotFound         404: no segment with that id in the workspace
└── SegmentUserNotFound     404: explain for an external_id that names no user
"""

from __future__ import annotations

from cohorthub.errors import InvalidInput, NotFound


class InvalidSegment(InvalidInput):
    """The segment definition breaks a rule; `path` names the offending node."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}", errors=[f"{path}: {problem}"])
        self.path = path
        self.problem = problem


class SegmentCycle(InvalidSegment):
    """A membership leaf would make the segment depend on itself."""


class SegmentNotFound(NotFound):
    """No segment with that id in this workspace."""


class SegmentUserNotFound(NotFound):
    """No user with that external_id in this workspace."""
