"""Errors about the database itself: a URL we cannot use, a database that is not there or not reachable."""

from __future__ import annotations

from cohorthub.errors import CohorthubError, InvalidInput, NotFound

SUPPORTED_URLS = "supported: sqlite:///relative/path, sqlite:////absolute/path, postgresql://USER@HOST[:PORT]/DB"


class InvalidDatabaseUrl(InvalidInput):
    """A database URL that cannot be parsed or names an unsupported database."""


class DatabaseMissing(NotFound):
    """No database at the URL, and the command does not create one."""


class DatabaseUnavailable(CohorthubError):
    """The database server cannot be reached or refused the connection."""

    status = 503
