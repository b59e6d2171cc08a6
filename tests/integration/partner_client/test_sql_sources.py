"""SQL sources through SQLAlchemy on SQLite and PostgreSQL (a uniquely named table, dropped after)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from cohorthub.partner_client import SourceError, SqlSource

PG_URL = os.environ.get("COHORTHUB_SYNC_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
ROWS = [("external_id", "u1"), ("device_id", "d1"), ("alias:email", "a@x.com"), ("external_id", "u1")]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(URL, table name) with ``ROWS`` in columns (kind, ident) plus 1,500 plain ids in ``big``."""
    url = f"sqlite:///{tmp_path / 'members.db'}" if request.param == "sqlite" else PG_URL
    table = f"pc_sync_{uuid.uuid4().hex[:10]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (kind TEXT, ident TEXT, n INTEGER)"))
        conn.execute(
            text(f"INSERT INTO {table} (kind, ident, n) VALUES (:k, :i, :n)"),
            [{"k": k, "i": i, "n": n} for n, (k, i) in enumerate(ROWS)]
            + [{"k": "big", "i": f"b{n}", "n": n} for n in range(1500)]
            + [{"k": "external_id", "i": None, "n": -1}],
        )
    try:
        yield url, table
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
        engine.dispose()


def members(source: SqlSource) -> list[tuple[str, str]]:
    return sorted((ns, raw.decode()) for ns, ids in source.batches() for raw in ids)


def test_two_columns_give_typed_identifiers(database: tuple[str, str]) -> None:
    url, table = database
    query = f"SELECT kind AS id_type, ident AS id FROM {table} WHERE kind <> 'big' AND ident IS NOT NULL"
    assert members(SqlSource(url, query)) == sorted(ROWS)


def test_one_column_uses_the_id_type_and_streams_in_batches(database: tuple[str, str]) -> None:
    url, table = database
    source = SqlSource(
        url, f"SELECT ident FROM {table} WHERE kind = 'big'", id_type="device_id", batch_size=400
    )
    batches = list(source.batches())
    assert [len(ids) for _, ids in batches] == [400, 400, 400, 300]
    assert {ns for ns, _ in batches} == {"device_id"}


def test_integers_become_strings_and_nulls_are_skipped(database: tuple[str, str]) -> None:
    url, table = database
    assert members(SqlSource(url, f"SELECT n FROM {table} WHERE kind = 'device_id'")) == [
        ("external_id", "1")
    ]
    nulls = SqlSource(url, f"SELECT ident FROM {table} WHERE n = -1")
    assert members(nulls) == []


def test_query_errors_and_bad_shapes_are_source_errors(database: tuple[str, str]) -> None:
    url, table = database
    with pytest.raises(SourceError, match="query failed"):
        members(SqlSource(url, "SELECT nope FROM missing_table_xyz"))
    with pytest.raises(SourceError, match="one column"):
        members(SqlSource(url, f"SELECT kind, ident, n FROM {table}"))
    with pytest.raises(SourceError, match="unknown id type"):
        members(SqlSource(url, f"SELECT kind AS id_type, ident FROM {table} WHERE kind = 'big'"))


def test_bad_url_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="cannot use database URL"):
        members(SqlSource("nosuchdb://x", "SELECT 1"))
