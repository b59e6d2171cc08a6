"""Cohort errors, with the exact texts partners already handle.

InvalidInput
└── InvalidCohortRequest      400: a `/partners/{partner}/cohorts*` body breaks a documented rule
NotFound
└── CohortNotFound            404: no cohort with that partner and id in the workspace
"""

from __future__ import annotations

from cohorthub.errors import InvalidInput, NotFound

BODY_TEXT = "Request body must be a JSON object"
COHORT_ID_TEXT = "`cohort_id` must be a valid string"
COHORT_CHANGES_TEXT = (
    "`cohort_changes` must be an array of objects each with key `user_ids` and/or `device_ids` "
    "mapping to an array of strings, or an `aliases` object"
)
TOO_MANY_TEXT = "Only 1,000 `user_ids`, `device_ids`, and `aliases` are allowed per request"
NAME_TEXT = "`name` must be a non-empty string"
CREATED_AT_TEXT = "`created_at` must be a valid time as an ISO-8601 string"


class InvalidCohortRequest(InvalidInput):
    """A cohort import body breaks a documented rule; `errors` names the offending path."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message, errors=[detail] if detail else None)


class CohortNotFound(NotFound):
    """No cohort with that partner and id in the workspace."""

    def __init__(self, partner: str, cohort_id: str) -> None:
        super().__init__(f"Unknown cohort: {partner}/{cohort_id}")
