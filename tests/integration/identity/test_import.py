"""Bulk user import on each store: counts, aliases, types, chunked commits, reruns, segments, Currents."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from cohorthub.bootstrap import Container
from cohorthub.identity.bulk import Parsed, parse_rows
from cohorthub.identity.imports import ImportSummary, import_users
from cohorthub.workspaces import services as workspaces
from tests.integration.identity.test_users_store import NOW, export, rows, track
from tests.integration.segments.test_engine_agrees import engine_members

CSV = (
    "external_id,first_name,country,email,email_subscribe,plan:string,level,vip,seen\n"
    "u1,Ann,ES,ann@x.io,opted_in,007,3,true,2024-01-02T03:04:05Z\n"
    "u2,Bo,ES,,,free,,false,\n"
    ",Nobody,ES,,,,,,\n"
    "u3,Cy,FR,not-an-email,,,,,\n"
    "u4,Di,FR,,unsubscribed,pro,1.5,,\n"
)


@pytest.fixture
def ws(container: Container) -> str:
    with container.uow() as uow:
        workspace, _ = workspaces.create_workspace(uow=uow, name="Acme", now=NOW)
    return workspace.id


def run(c: Container, ws: str, text: str, kind: str = "csv", chunk_rows: int = 1000) -> ImportSummary:
    parsed = parse_rows("csv" if kind == "csv" else "jsonl", io.StringIO(text, newline=""))
    return import_users(
        new_uow=c.uow,
        workspace_id=ws,
        rows=parsed,
        listeners=c.identity_listeners,
        clock=lambda: NOW + 1,
        chunk_rows=chunk_rows,
    )


def by_id(c: Container, ws: str, *ids: str) -> dict[str, dict[str, Any]]:
    return {u["external_id"]: u for u in export(c, ws, {"external_ids": list(ids)}).users}


def test_creates_updates_and_rejects_with_the_track_rules(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u2", "plan": "old", "home_city": "Bilbao"}]})
    summary = run(container, ws, CSV, chunk_rows=2)
    assert (summary.rows, summary.created, summary.updated, summary.rejected, summary.committed) == (
        5,
        2,
        1,
        2,
        5,
    )
    assert [(e.line, e.reason) for e in summary.errors] == [
        (4, "external_id must not be empty"),
        (5, "email is not an email address"),
    ]
    users = by_id(container, ws, "u1", "u2", "u4")
    assert users["u1"]["custom_attributes"] == {
        "plan": "007",
        "level": 3,
        "vip": True,
        "seen": "2024-01-02T03:04:05.000Z",
    }
    assert (users["u1"]["email"], users["u1"]["country"], users["u1"]["email_subscribe"]) == (
        "ann@x.io",
        "ES",
        "opted_in",
    )
    assert users["u2"]["custom_attributes"] == {"plan": "free", "vip": False}  # empty cells unset nothing
    assert users["u2"]["home_city"] == "Bilbao"
    assert users["u4"]["custom_attributes"] == {"plan": "pro", "level": 1.5}
    assert rows(container, "SELECT count(*) FROM users")[0][0] == 3


def test_rerunning_the_same_file_changes_no_attribute(container: Container, ws: str) -> None:
    first = run(container, ws, CSV)
    before = by_id(container, ws, "u1", "u2", "u4")
    again = run(container, ws, CSV)
    assert (first.created, first.updated) == (3, 0)
    assert (again.created, again.updated, again.rejected) == (0, 3, 2)
    after = by_id(container, ws, "u1", "u2", "u4")
    assert {k: (u["custom_attributes"], u.get("email"), u["braze_id"]) for k, u in after.items()} == {
        k: (u["custom_attributes"], u.get("email"), u["braze_id"]) for k, u in before.items()
    }
    # Currents: one subscription change per user whose email_subscribe changed, none on the rerun.
    events = rows(
        container,
        "SELECT count(*) FROM outbox WHERE event_type = 'users.behaviors.subscription.GlobalStateChange'",
    )
    assert events[0][0] == 2


def test_aliases_csv_creates_and_json_lines_follow_track_defaults(container: Container, ws: str) -> None:
    summary = run(container, ws, "user_alias_name,user_alias_label,plan\nann,crm,pro\nann,crm,max\n")
    assert (summary.created, summary.updated) == (1, 1)
    lines = (
        '{"user_alias": {"alias_name": "ann", "alias_label": "crm"}, "tier": 2}\n'
        '{"user_alias": {"alias_name": "bo", "alias_label": "crm"}, "tier": 1}\n'
        '{"user_alias": {"alias_name": "cy", "alias_label": "crm"}, "_update_existing_only": false}\n'
        '{"external_id": "u9", "visits": {"inc": 2}, "tags": ["a", "b"]}\n'
    )
    summary = run(container, ws, lines, "jsonl")
    assert (summary.created, summary.updated, summary.rejected) == (2, 1, 1)
    assert [(e.line, e.reason) for e in summary.errors] == [
        (2, "no user with user_alias 'crm/bo'; set _update_existing_only to false to create it")
    ]
    (ann,) = export(container, ws, {"user_aliases": [{"alias_name": "ann", "alias_label": "crm"}]}).users
    assert ann["custom_attributes"] == {"plan": "max", "tier": 2}
    assert by_id(container, ws, "u9")["u9"]["custom_attributes"] == {"visits": 2, "tags": ["a", "b"]}


def test_a_crash_leaves_the_committed_chunks(container: Container, ws: str) -> None:
    def failing() -> Iterator[Parsed]:
        yield from parse_rows("csv", io.StringIO("external_id\nu1\nu2\nu3\n", newline=""))
        raise RuntimeError("the process died")

    with pytest.raises(RuntimeError):
        import_users(new_uow=container.uow, workspace_id=ws, rows=failing(), clock=lambda: NOW, chunk_rows=2)
    assert sorted(r[0] for r in rows(container, "SELECT external_id FROM users")) == ["u1", "u2"]
    summary = run(container, ws, "external_id\nu1\nu2\nu3\n")  # running the file again completes it
    assert (summary.created, summary.updated) == (1, 2)


def test_a_failed_write_stops_the_import_and_its_reader(container: Container, ws: str) -> None:
    opened: list[int] = []

    def new_uow() -> Any:
        opened.append(1)
        if len(opened) == 2:
            raise RuntimeError("the database went away")
        return container.uow()

    text = "external_id\n" + "".join(f"u{i}\n" for i in range(10))
    with pytest.raises(RuntimeError, match="went away"):
        import_users(
            new_uow=new_uow,
            workspace_id=ws,
            rows=parse_rows("csv", io.StringIO(text, newline="")),
            clock=lambda: NOW,
            chunk_rows=3,
        )
    assert rows(container, "SELECT count(*) FROM users")[0][0] == 3
    assert not [t for t in threading.enumerate() if t.name == "import-reader"]


def test_segments_count_the_imported_users(container: Container, ws: str) -> None:
    es = {"type": "attribute", "attribute": "country", "op": "equals", "value": "ES"}
    pro = {
        "type": "custom_attribute",
        "attribute": "plan",
        "data_type": "string",
        "op": "equals",
        "value": "pro",
    }
    assert engine_members(container, ws, es) == set()  # the index is warm before the import
    run(container, ws, CSV, chunk_rows=2)
    assert len(engine_members(container, ws, es)) == 2
    assert len(engine_members(container, ws, pro)) == 1
    run(container, ws, "external_id,country\nu4,ES\n")  # an update moves u4 into the segment
    assert len(engine_members(container, ws, es)) == 3


def test_one_chunk_mixing_new_existing_and_repeated_users(container: Container, ws: str) -> None:
    track(container, ws, {"attributes": [{"external_id": "u2", "plan": "old", "home_city": "Bilbao"}]})
    text = (
        "external_id,country,email_subscribe,plan,level\n"
        "u1,ES,,free,1\n"  # new: a plain insert
        "u2,FR,,pro,\n"  # existing: the rules update it
        "u3,DE,,free,2\n"  # new, then named again below in the same chunk
        "u5,,opted_in,,\n"  # new, but its subscription is a Currents event
        "u3,,,max,\n"
        "u6,,,basic,\n"  # new, without the country u1 sets
    )
    summary = run(container, ws, text)
    assert (summary.created, summary.updated, summary.rejected) == (4, 2, 0)
    users = by_id(container, ws, "u1", "u2", "u3", "u5", "u6")
    assert users["u1"]["custom_attributes"] == {"plan": "free", "level": 1}
    assert (users["u1"]["country"], users["u1"].get("first_name")) == ("ES", None)  # no row sets a name
    assert (users["u6"].get("country"), users["u6"]["custom_attributes"]) == (None, {"plan": "basic"})
    assert (users["u2"]["custom_attributes"], users["u2"]["home_city"]) == ({"plan": "pro"}, "Bilbao")
    assert (users["u3"]["custom_attributes"], users["u3"]["country"]) == ({"plan": "max", "level": 2}, "DE")
    braze_ids = {u["braze_id"] for u in users.values()}
    assert len(braze_ids) == 5 and all(len(b) == 24 and int(b, 16) >= 0 for b in braze_ids)
    subscriptions = rows(
        container,
        "SELECT count(*) FROM outbox WHERE event_type = 'users.behaviors.subscription.GlobalStateChange'",
    )
    assert subscriptions[0][0] == 1  # u5's, as /users/track would send it
    assert rows(container, "SELECT count(*) FROM users WHERE change_id IS NULL")[0][0] == 0


def test_a_user_created_by_one_line_is_found_by_email_on_a_later_one(container: Container, ws: str) -> None:
    lines = (
        '{"external_id": "u1", "email": "ann@x.io", "tier": 1}\n'
        '{"email": "ann@x.io", "tier": 2}\n'
        '{"external_id": "u2", "visits": {"inc": 3}, "tags": {"add": ["a"]}, "gone": null}\n'
    )
    summary = run(container, ws, lines, "jsonl")
    assert (summary.created, summary.updated, summary.rejected) == (2, 1, 0)
    assert rows(container, "SELECT count(*) FROM users")[0][0] == 2
    users = by_id(container, ws, "u1", "u2")
    assert users["u1"]["custom_attributes"] == {"tier": 2}
    assert users["u2"]["custom_attributes"] == {"visits": 3, "tags": ["a"]}


def test_an_external_id_created_by_another_writer_after_the_file_was_read_is_updated(
    container: Container, ws: str
) -> None:
    parsed = list(parse_rows("csv", io.StringIO("external_id,plan\nu1,pro\nu2,free\n", newline="")))
    track(container, ws, {"attributes": [{"external_id": "u1", "level": 7}]})
    summary = import_users(
        new_uow=container.uow, workspace_id=ws, rows=parsed, clock=lambda: NOW + 1, chunk_rows=10
    )
    assert (summary.created, summary.updated) == (1, 1)
    assert by_id(container, ws, "u1")["u1"]["custom_attributes"] == {"level": 7, "plan": "pro"}
