"""Scale: a change sequence on users, which segment indexes catch up from.

Every insert or update of a `users` row stamps it with the next value of a sequence
(`users.change_id`, indexed), by trigger, whatever code wrote it. A segment evaluation reads
only the rows stamped after the last one it saw (and the few still-missing values below,
for a writer that commits late), instead of every user updated within a time margin. The
`(workspace_id, updated_at)` index that catch-up used is dropped.

Revision ID: 0007_scale
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_scale"
down_revision = "0001_core"
branch_labels = None
depends_on = "0005_segments"

_STAMPED = (
    "workspace_id, braze_id, external_id, email, phone, first_name, last_name, gender, dob, country, "
    "home_city, language, time_zone, email_subscribe, custom_attributes, created_at, updated_at"
)
_SQLITE_STAMP = (
    "UPDATE user_change_seq SET value = value + 1; "
    "UPDATE users SET change_id = (SELECT value FROM user_change_seq) WHERE num = NEW.num;"
)


def upgrade() -> None:
    op.add_column("users", sa.Column("change_id", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE users_change_seq")
        op.execute("UPDATE users SET change_id = nextval('users_change_seq')")
        op.execute(
            "CREATE FUNCTION users_stamp_change() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.change_id := nextval('users_change_seq'); RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER users_stamp_change BEFORE INSERT OR UPDATE ON users "
            "FOR EACH ROW EXECUTE FUNCTION users_stamp_change()"
        )
    else:
        op.execute("CREATE TABLE user_change_seq (value INTEGER NOT NULL)")
        op.execute("INSERT INTO user_change_seq (value) SELECT coalesce(max(num), 0) FROM users")
        op.execute("UPDATE users SET change_id = num")
        op.execute(f"CREATE TRIGGER users_stamp_insert AFTER INSERT ON users BEGIN {_SQLITE_STAMP} END")
        op.execute(
            f"CREATE TRIGGER users_stamp_update AFTER UPDATE OF {_STAMPED} ON users BEGIN {_SQLITE_STAMP} END"
        )
    op.create_index("ix_users_change_id", "users", ["change_id"])
    op.drop_index("ix_users_workspace_updated_at", table_name="users")


def downgrade() -> None:
    op.create_index("ix_users_workspace_updated_at", "users", ["workspace_id", "updated_at"])
    op.drop_index("ix_users_change_id", table_name="users")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER users_stamp_change ON users")
        op.execute("DROP FUNCTION users_stamp_change()")
        op.execute("DROP SEQUENCE users_change_seq")
    else:
        op.execute("DROP TRIGGER users_stamp_insert")
        op.execute("DROP TRIGGER users_stamp_update")
        op.execute("DROP TABLE user_change_seq")
    op.drop_column("users", "change_id")
