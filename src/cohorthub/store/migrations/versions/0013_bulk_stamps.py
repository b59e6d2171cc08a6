"""Bulk change stamps on SQLite: a writer that stamps its own rows skips the per-row trigger.

`users.change_id` still comes from the one sequence (`user_change_seq`), but a writer that
inserts or updates many users takes a block of values in one statement and writes them with
the rows; the triggers stamp only the rows written without a fresh value (any other writer).
On SQLite one writer runs at a time, so a block is as ordered as the trigger's values were.
PostgreSQL keeps its trigger: `nextval` per row is cheap there and safe across writers.

Revision ID: 0013_bulk_stamps
Revises: 0007_scale
"""

from __future__ import annotations

from alembic import op

revision = "0013_bulk_stamps"
down_revision = "0007_scale"
branch_labels = None
depends_on = None

_STAMPED = (
    "workspace_id, braze_id, external_id, email, phone, first_name, last_name, gender, dob, country, "
    "home_city, language, time_zone, email_subscribe, custom_attributes, created_at, updated_at"
)
_STAMP = (
    "UPDATE user_change_seq SET value = value + 1; "
    "UPDATE users SET change_id = (SELECT value FROM user_change_seq) WHERE num = NEW.num;"
)


def _triggers(insert_when: str, update_when: str) -> None:
    op.execute("DROP TRIGGER users_stamp_insert")
    op.execute("DROP TRIGGER users_stamp_update")
    op.execute(f"CREATE TRIGGER users_stamp_insert AFTER INSERT ON users {insert_when} BEGIN {_STAMP} END")
    op.execute(
        f"CREATE TRIGGER users_stamp_update AFTER UPDATE OF {_STAMPED} ON users {update_when} "
        f"BEGIN {_STAMP} END"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _triggers("WHEN NEW.change_id IS NULL", "WHEN NEW.change_id IS OLD.change_id")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _triggers("", "")
