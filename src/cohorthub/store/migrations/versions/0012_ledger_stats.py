"""Send ledger: an index that covers a program's statistics (counts by step and state, opened, clicked,
unsubscribed, converted), so they are read from the index alone.

Revision ID: 0012_ledger_stats
Revises: 0008_messaging
"""

from __future__ import annotations

from alembic import op

revision = "0012_ledger_stats"
down_revision = "0008_messaging"
branch_labels = None
depends_on = None

_COLUMNS = ["program_id", "step_id", "state", "opened_at", "clicked_at", "unsubscribed_at", "converted_at"]


def upgrade() -> None:
    op.create_index("ix_msg_sends_stats", "msg_sends", _COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_msg_sends_stats", table_name="msg_sends")
