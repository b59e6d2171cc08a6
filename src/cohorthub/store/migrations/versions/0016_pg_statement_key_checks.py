"""PostgreSQL: the hot foreign keys checked once per statement instead of once per row.

A foreign key checks every inserted row on its own: a query and a `FOR KEY SHARE` lock on the
referenced row, per row. A cohort import appends up to 1,000 `cohort_changes` rows of one
cohort (the checks cost more than the insert itself, ~11 ms of ~15 ms), `/users/track` inserts
up to 75 users of one workspace (the per-row lock of the one workspace row, shared by every
concurrent writer, cost 1–5 ms a request) and their events and purchases.

`cohort_changes.cohort_pk → cohorts.pk`, `users.workspace_id → workspaces.id` and
`custom_events.user_num`, `purchases.user_num → users.num` become triggers that keep the same
guarantees: after each INSERT statement every referenced row is locked `FOR KEY SHARE` (as the
foreign key locked it, so a concurrent delete of the parent waits, and a parent deleted meanwhile
is not found), once per distinct parent, and a row naming a missing parent fails the statement
with `foreign_key_violation`; an UPDATE changing the column is checked per row (merges move
events); deleting a cohort or a user deletes its rows (the old `ON DELETE CASCADE`), deleting a
workspace that still has users fails, and so does changing a referenced key. SQLite keeps its
foreign keys (its checks are cheap index probes).

Revision ID: 0016_pg_statement_key_checks
Revises: 0015_ids_autoincrement
"""

from __future__ import annotations

from alembic import op

revision = "0016_pg_statement_key_checks"
down_revision = "0015_ids_autoincrement"
branch_labels = None
depends_on = None

#: (child table, column, parent table, parent key, foreign key name, parent delete cascades)
KEYS = (
    ("cohort_changes", "cohort_pk", "cohorts", "pk", "fk_cohort_changes_cohort_pk_cohorts", True),
    ("users", "workspace_id", "workspaces", "id", "fk_users_workspace_id_workspaces", False),
    ("custom_events", "user_num", "users", "num", "fk_custom_events_user_num_users", True),
    ("purchases", "user_num", "users", "num", "fk_purchases_user_num_users", True),
)


def _violation(child: str, name: str) -> str:
    return (
        f'RAISE EXCEPTION \'insert or update on table "{child}" violates foreign key constraint '
        f"\"{name}\"' USING ERRCODE = 'foreign_key_violation', TABLE = '{child}', CONSTRAINT = '{name}'"
    )


def _create(child: str, column: str, parent: str, key: str, name: str, cascade: bool) -> None:
    fn = f"{name}_check"
    # One primary-key probe and lock per distinct parent (LATERAL … OFFSET 0: whatever the size
    # of the statement or the statistics of the parent), then the count of parents found.
    op.execute(
        f"CREATE FUNCTION {fn}_rows() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE wanted bigint; found bigint; BEGIN "
        f"SELECT count(*) INTO found FROM (SELECT DISTINCT {column} AS k FROM new_rows "
        f"WHERE {column} IS NOT NULL ORDER BY 1) AS n CROSS JOIN LATERAL (SELECT 1 FROM {parent} p "
        f"WHERE p.{key} = n.k OFFSET 0 FOR KEY SHARE) AS l; "
        f"SELECT count(DISTINCT {column}) INTO wanted FROM new_rows; "
        f"IF found <> wanted THEN {_violation(child, name)}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {name}_insert AFTER INSERT ON {child} REFERENCING NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}_rows()"
    )
    op.execute(
        f"CREATE FUNCTION {fn}_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"PERFORM 1 FROM {parent} WHERE {key} = NEW.{column} FOR KEY SHARE; "
        f"IF NOT FOUND THEN {_violation(child, name)}; END IF; RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {name}_update AFTER UPDATE OF {column} ON {child} FOR EACH ROW "
        f"WHEN (NEW.{column} IS NOT NULL AND NEW.{column} IS DISTINCT FROM OLD.{column}) "
        f"EXECUTE FUNCTION {fn}_row()"
    )
    referenced = (
        f'RAISE EXCEPTION \'update or delete on table "{parent}" violates foreign key constraint '
        f'"{name}" on table "{child}"\' USING ERRCODE = \'foreign_key_violation\', '
        f"TABLE = '{parent}', CONSTRAINT = '{name}'"
    )
    on_delete = (
        f"DELETE FROM {child} WHERE {column} = OLD.{key}"
        if cascade
        else f"IF EXISTS (SELECT 1 FROM {child} WHERE {column} = OLD.{key}) THEN {referenced}; END IF"
    )
    op.execute(
        f"CREATE FUNCTION {fn}_parent() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP = 'DELETE' THEN {on_delete}; "
        f"ELSIF EXISTS (SELECT 1 FROM {child} WHERE {column} = OLD.{key}) THEN {referenced}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {name}_delete AFTER DELETE ON {parent} FOR EACH ROW EXECUTE FUNCTION {fn}_parent()"
    )
    op.execute(
        f"CREATE TRIGGER {name}_parent_key AFTER UPDATE OF {key} ON {parent} FOR EACH ROW "
        f"WHEN (OLD.{key} IS DISTINCT FROM NEW.{key}) EXECUTE FUNCTION {fn}_parent()"
    )
    op.execute(f"ALTER TABLE {child} DROP CONSTRAINT {name}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for child, column, parent, key, name, cascade in KEYS:
        _create(child, column, parent, key, name, cascade)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for child, column, parent, key, name, cascade in KEYS:
        op.execute(f"DROP TRIGGER {name}_delete ON {parent}")
        op.execute(f"DROP TRIGGER {name}_parent_key ON {parent}")
        op.execute(f"DROP TRIGGER {name}_update ON {child}")
        op.execute(f"DROP TRIGGER {name}_insert ON {child}")
        for suffix in ("parent", "row", "rows"):
            op.execute(f"DROP FUNCTION {name}_check_{suffix}()")
        action = " ON DELETE CASCADE" if cascade else ""
        op.execute(
            f"ALTER TABLE {child} ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
            f"REFERENCES {parent} ({key}){action}"
        )
