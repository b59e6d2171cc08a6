"""Integer ids are never handed out twice, on SQLite and PostgreSQL, and an upgraded SQLite
database keeps its rows, indexes and triggers and continues its ids above the old max."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Engine, Table, delete, func, insert, select, text

from cohorthub.bootstrap import Container
from cohorthub.store import migrate
from cohorthub.store.db import create_db_engine
from cohorthub.store.tables import custom_events, outbox, users, workspaces

T0 = 1_800_000_000.0
#: The head of every branch before 0015_ids_autoincrement.
PREVIOUS_HEADS = (
    "0013_bulk_stamps",
    "0004_currents",
    "0005_segments",
    "0009_sdk",
    "0010_dashboard",
    "0011_partners_auth",
    "0012_ledger_stats",
)


def _user(n: int) -> dict[str, Any]:
    return {
        "workspace_id": "ws",
        "braze_id": f"{n:024x}",
        "external_id": f"u{n}",
        "custom_attributes": "{}",
        "created_at": T0,
        "updated_at": T0,
    }


def _event(user_num: int, i: int) -> dict[str, Any]:
    return {"workspace_id": "ws", "user_num": user_num, "name": "played", "time": T0 + i, "properties": "{}"}


def _outbox_row(i: int) -> dict[str, Any]:
    return {
        "workspace_id": "ws",
        "event_id": f"00000000-0000-0000-0000-{i:012d}",
        "event_type": "users.behaviors.CustomEvent",
        "time": int(T0),
        "payload": b"{}",
        "created_at": T0,
    }


def _add(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    key = next(iter(table.primary_key.columns))
    with engine.begin() as conn:
        return [conn.execute(insert(table).values(row).returning(key)).scalar_one() for row in rows]


def _fill(engine: Engine, start: int) -> tuple[list[int], list[int], list[int]]:
    """Users, each with two events, and outbox rows; their ids."""
    nums = _add(engine, users, [_user(start + i) for i in range(3)])
    events = _add(engine, custom_events, [_event(n, i) for n in nums for i in range(2)])
    seqs = _add(engine, outbox, [_outbox_row(start + i) for i in range(4)])
    return nums, events, seqs


def _delete_all(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(outbox))
        conn.execute(delete(users))  # cascades to their events


def test_ids_of_deleted_newest_rows_are_not_handed_out_again(container: Container) -> None:
    engine = container.engine
    _add(engine, workspaces, [{"id": "ws", "name": "Acme", "created_at": T0}])
    keep, _, _ = _fill(engine, 0)
    nums, events, seqs = _fill(engine, 100)
    with engine.begin() as conn:  # the newest rows go: newest users (with their events), newest outbox rows
        conn.execute(delete(users).where(users.c.num.in_(nums)))
        conn.execute(delete(outbox).where(outbox.c.seq.in_(seqs)))
        assert conn.execute(select(func.count()).select_from(custom_events)).scalar_one() == 6

    new_nums, new_events, new_seqs = _fill(engine, 200)
    assert min(new_nums) > max(nums) > max(keep)
    assert min(new_events) > max(events)
    assert min(new_seqs) > max(seqs)

    _delete_all(engine)  # every row gone
    last_nums, last_events, last_seqs = _fill(engine, 300)
    assert min(last_nums) > max(new_nums)
    assert min(last_events) > max(new_events)
    assert min(last_seqs) > max(new_seqs)


def _schema(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT type, name FROM sqlite_master WHERE type IN ('index', 'trigger')"))
        return {(r[0], r[1]) for r in rows}


def test_upgrade_keeps_rows_indexes_triggers_and_continues_ids(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    config = migrate.alembic_config(engine)
    for head in PREVIOUS_HEADS:
        command.upgrade(config, head)
    _add(engine, workspaces, [{"id": "ws", "name": "Acme", "created_at": T0}])
    nums, events, _ = _fill(engine, 0)
    with engine.begin() as conn:  # a connector that already delivered past every remaining row
        conn.execute(
            text(
                "INSERT INTO currents_connectors (id, workspace_id, kind, url, events, batch_size, paused, "
                "created_at, cursor_xid, cursor_seq, halted, delivered, retried, dropped) "
                "VALUES ('c1', 'ws', 'http', 'http://127.0.0.1:9/', '{}', 10, 0, :t, 0, 50, 0, 0, 0, 0)"
            ),
            {"t": T0},
        )
        conn.execute(text("INSERT INTO msg_cursors (name, value) VALUES ('events', 70)"))
        before = {
            name: conn.execute(text(f"SELECT * FROM {name} ORDER BY 1")).all()
            for name in ("users", "custom_events", "outbox", "user_change_seq", "msg_cursors")
        }
        stamps = conn.execute(text("SELECT num, change_id FROM users ORDER BY num")).all()
    assert all(change_id is not None for _, change_id in stamps)  # the insert trigger stamped them
    indexes_and_triggers = _schema(engine)

    migrate.upgrade(engine)

    assert indexes_and_triggers <= _schema(engine)  # all back (other migrations may add their own)
    with engine.connect() as conn:
        for name, rows in before.items():
            assert conn.execute(text(f"SELECT * FROM {name} ORDER BY 1")).all() == rows
        for table, key in (("users", "num"), ("custom_events", "id"), ("outbox", "seq")):
            query = text("SELECT sql FROM sqlite_master WHERE name = :n")
            sql = conn.execute(query, {"n": table}).scalar_one()
            assert f"{key} INTEGER NOT NULL CONSTRAINT pk_{table} PRIMARY KEY AUTOINCREMENT" in sql
        assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    _delete_all(engine)
    new_nums, new_events, new_seqs = _fill(engine, 100)
    assert min(new_nums) > max(nums)
    assert min(new_events) > 70 > max(events)  # above the messaging event scanner's cursor
    assert min(new_seqs) > 50  # above the connector's cursor, not only above the old rows
    with engine.connect() as conn:  # the recreated trigger stamps new and updated users
        conn.execute(text("UPDATE users SET email = 'a@example.com' WHERE num = :n"), {"n": new_nums[0]})
        query = text("SELECT change_id FROM users WHERE num = :n")
        stamped = conn.execute(query, {"n": new_nums[0]}).scalar()
        newest = conn.execute(text("SELECT max(change_id) FROM users")).scalar()
        conn.rollback()
    assert stamped is not None and stamped == newest and stamped > max(c for _, c in stamps)
    engine.dispose()
