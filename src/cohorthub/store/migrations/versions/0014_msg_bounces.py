"""Messaging: addresses that bounced for good (later sends skip them as unreachable).

Revision ID: 0014_msg_bounces
Revises: 0012_ledger_stats
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_msg_bounces"
down_revision = "0012_ledger_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "msg_suppressions",
        sa.Column("workspace_id", sa.String(32), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),  # lower case
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("send_row_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("msg_suppressions")
