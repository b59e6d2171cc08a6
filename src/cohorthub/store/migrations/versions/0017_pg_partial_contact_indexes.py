"""PostgreSQL: the users' e-mail and phone indexes hold only the users that have one.

`(workspace_id, email)` and `(workspace_id, phone)` were full indexes, so a lookup by external id
(`workspace_id = ? AND external_id = ?`) could be answered by any of three indexes that start
with `workspace_id`. When the statistics put a workspace at a row or two (a new workspace in a
table analyzed before it existed, or users loaded in bulk since the last `ANALYZE`), the planner
saw no difference between them and could pick the phone index: a scan of every user of the
workspace, filtered on the external id, per identifier. As partial indexes (`WHERE email IS NOT
NULL`, `WHERE phone IS NOT NULL`) they serve only lookups by e-mail or phone (a `=` or `= ANY`
on the column implies it is not null), which leaves the unique `(workspace_id, external_id)` as
the one index for an external id, whatever the statistics; and users without an e-mail or a
phone no longer add entries to them. SQLite keeps its indexes (its planner does not guess from
missing statistics this way).

Revision ID: 0017_pg_partial_contact_indexes
Revises: 0016_pg_statement_key_checks
"""

from __future__ import annotations

from alembic import op

revision = "0017_pg_partial_contact_indexes"
down_revision = "0016_pg_statement_key_checks"
branch_labels = None
depends_on = None

COLUMNS = ("email", "phone")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_users_workspace_{column}")
        op.execute(
            f"CREATE INDEX ix_users_workspace_{column} ON users (workspace_id, {column}) "
            f"WHERE {column} IS NOT NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_users_workspace_{column}")
        op.execute(f"CREATE INDEX ix_users_workspace_{column} ON users (workspace_id, {column})")
