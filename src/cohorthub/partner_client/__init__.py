"""Cohort sync client for servers speaking the partner cohort import protocol.

Importable on its own: depends on httpx and the standard library only (SQL sources import
SQLAlchemy lazily). See ``docs/partner-client.md``.
"""

from .chunking import MAX_IDS_PER_REQUEST, Chunk, chunk_changes
from .client import CohortSyncClient
from .diff import ChangeSet, diff_membership
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    PartnerClientError,
    RequestRejected,
    RetriesExhausted,
    SourceError,
    StateError,
    UnexpectedResponse,
)
from .model import DEVICE_ID, EXTERNAL_ID, Cohort, Secret, SyncResult, Target, parse_namespace
from .retry import Decision, Failure, RetryPolicy
from .sources import DelimitedSource, IterableSource, JsonLinesSource, Source, SqlSource, open_file_source
from .state import CohortState, StateStore

__all__ = [
    "DEVICE_ID",
    "EXTERNAL_ID",
    "MAX_IDS_PER_REQUEST",
    "ApiError",
    "AuthenticationError",
    "ChangeSet",
    "Chunk",
    "Cohort",
    "CohortState",
    "CohortSyncClient",
    "ConfigurationError",
    "Decision",
    "DelimitedSource",
    "Failure",
    "IterableSource",
    "JsonLinesSource",
    "PartnerClientError",
    "RequestRejected",
    "RetriesExhausted",
    "RetryPolicy",
    "Secret",
    "Source",
    "SourceError",
    "SqlSource",
    "StateError",
    "StateStore",
    "SyncResult",
    "Target",
    "UnexpectedResponse",
    "chunk_changes",
    "diff_membership",
    "open_file_source",
    "parse_namespace",
]
