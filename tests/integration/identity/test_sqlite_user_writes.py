"""SQLite users rows: an update sets only the columns that changed, an insert only those some row sets."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from cohorthub.bootstrap import Container
from cohorthub.identity import services
from cohorthub.identity.requests import parse_track
from cohorthub.workspaces import services as workspaces

NOW = 1_800_000_000.0


@pytest.fixture
def acme(container: Container, database_url: str) -> tuple[Container, str]:
    """The container and a workspace, on SQLite (PostgreSQL writes users by column arrays)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("these statements are SQLite's")
    with container.uow() as uow:
        return container, workspaces.create_workspace(uow=uow, name="Acme", now=NOW)[0].id


def track(c: Container, ws: str, *bodies: dict[str, Any], now: float = NOW) -> None:
    """Each body a track request, all in one transaction."""
    with c.uow() as uow:
        for body in bodies:
            batch = parse_track(body, now=now)
            services.apply_track(uow=uow, workspace_id=ws, batch=batch, now=now)
        uow.commit()


def user(c: Container, ws: str, external_id: str) -> dict[str, Any]:
    with c.uow(readonly=True) as uow:
        return services.export_users(uow=uow, workspace_id=ws, body={"external_ids": [external_id]}).users[0]


def statements(c: Container) -> list[str]:
    """Every statement the engine runs from now on."""
    seen: list[str] = []
    event.listen(c.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_an_update_leaves_unchanged_indexed_columns_alone(acme: tuple[Container, str]) -> None:
    sqlite, ws = acme
    with sqlite.engine.begin() as conn:  # counts rewrites of the e-mail column (and so of its index)
        conn.execute(text("CREATE TABLE email_writes (num INTEGER)"))
        conn.execute(
            text(
                "CREATE TRIGGER count_email AFTER UPDATE OF email ON users "
                "BEGIN INSERT INTO email_writes VALUES (NEW.num); END"
            )
        )
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "email": "a@x.test", "plan": "free"}]})
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "plan": "pro", "visits": {"inc": 1}}]})
    with sqlite.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM email_writes")).scalar_one() == 0
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "email": "b@x.test"}]})
    with sqlite.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM email_writes")).scalar_one() == 1
    got = user(sqlite, ws, "u1")
    assert (got["email"], got["custom_attributes"]) == ("b@x.test", {"plan": "pro", "visits": 1})


def test_an_update_still_stamps_the_change_and_the_time(acme: tuple[Container, str]) -> None:
    sqlite, ws = acme
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "plan": "free"}]})
    with sqlite.engine.connect() as conn:
        before = conn.execute(text("SELECT change_id, updated_at FROM users")).one()
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "plan": "free"}]}, now=NOW + 5)
    with sqlite.engine.connect() as conn:
        after = conn.execute(text("SELECT change_id, updated_at FROM users")).one()
    assert after[0] > before[0]
    assert after[1] == NOW + 5


def test_a_value_changed_and_changed_back_in_one_transaction_is_written(acme: tuple[Container, str]) -> None:
    sqlite, ws = acme
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "first_name": "Ana"}]})
    track(
        sqlite,
        ws,
        {"attributes": [{"external_id": "u1", "first_name": "Bea"}]},
        {"attributes": [{"external_id": "u1", "first_name": "Ana", "home_city": "Oslo"}]},
    )
    got = user(sqlite, ws, "u1")
    assert (got["first_name"], got["home_city"]) == ("Ana", "Oslo")


def test_an_insert_names_only_the_columns_its_rows_set(acme: tuple[Container, str]) -> None:
    sqlite, ws = acme
    seen = statements(sqlite)
    track(sqlite, ws, {"attributes": [{"external_id": "u1", "plan": "free"}]})
    (insert,) = [s for s in seen if s.startswith("INSERT INTO users")]
    assert "email" not in insert and "first_name" not in insert and "external_id" in insert
    track(
        sqlite,
        ws,
        {"attributes": [{"external_id": "u2", "email": "a@x.test"}, {"external_id": "u3", "country": "NO"}]},
    )
    insert = [s for s in seen if s.startswith("INSERT INTO users")][-1]
    assert "email" in insert and "country" in insert and "phone" not in insert
    got = [user(sqlite, ws, x) for x in ("u1", "u2", "u3")]
    assert [u.get("email") for u in got] == [None, "a@x.test", None]
    assert [u.get("country") for u in got] == [None, None, "NO"]
    assert got[0]["custom_attributes"] == {"plan": "free"}
