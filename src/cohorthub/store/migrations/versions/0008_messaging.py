"""Messaging: campaigns and Canvases, the send ledger, scheduled jobs, Canvas entries, cursors.

Revision ID: 0008_messaging
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_messaging"
down_revision = None
branch_labels = ("messaging",)
depends_on = "0001_core"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "msg_programs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),  # campaign | canvas
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),  # draft | active | paused | archived
        sa.Column("spec", sa.Text(), nullable=False),  # JSON: channel, message, audience, delivery…
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("first_sent_at", sa.Float()),
        sa.Column("last_sent_at", sa.Float()),
    )
    op.create_index("ix_msg_programs_workspace", "msg_programs", ["workspace_id", "kind", "created_at"])
    op.create_table(
        "msg_sends",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=False),
        sa.Column("step_id", sa.String(64), nullable=False),  # "" for a campaign
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("dispatch_id", sa.String(64), nullable=False),
        sa.Column("send_id", sa.String(64)),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.Text()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("opened_at", sa.Float()),
        sa.Column("clicked_at", sa.Float()),
        sa.Column("unsubscribed_at", sa.Float()),
        sa.Column("converted_at", sa.Float()),
        sa.UniqueConstraint("program_id", "step_id", "user_num", "dispatch_id", name="uq_msg_sends_key"),
    )
    op.create_index("ix_msg_sends_user", "msg_sends", ["workspace_id", "user_num", "created_at"])
    op.create_index("ix_msg_sends_program", "msg_sends", ["program_id", "state"])
    op.create_table(
        "msg_jobs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("program_id", sa.String(36), nullable=False),
        sa.Column("dispatch_id", sa.String(64), nullable=False),
        sa.Column("send_id", sa.String(64)),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),  # pending | running | done | cancelled
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float()),
        sa.Column("payload", sa.Text(), nullable=False),  # JSON: recipients, properties, broadcast
        sa.Column("idem_key", sa.String(96), unique=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float()),
        sa.Column("targeted", sa.Integer()),
        sa.Column("note", sa.Text()),
    )
    op.create_index("ix_msg_jobs_due", "msg_jobs", ["state", "due_at"])
    op.create_index("ix_msg_jobs_program", "msg_jobs", ["program_id", "created_at"])
    op.create_table(
        "msg_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("canvas_id", sa.String(36), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("trigger_key", sa.String(96), nullable=False),
        sa.Column("step_id", sa.String(64)),
        sa.Column("step_since", sa.Float(), nullable=False),
        sa.Column("waiting", sa.Boolean(), nullable=False),
        sa.Column("next_at", sa.Float()),
        sa.Column("state", sa.String(16), nullable=False),  # active | done | exited
        sa.Column("owner", sa.String(64)),
        sa.Column("lease_until", sa.Float()),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("entered_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("converted_at", sa.Float()),
        sa.UniqueConstraint("canvas_id", "trigger_key", name="uq_msg_entries_trigger"),
    )
    op.create_index("ix_msg_entries_due", "msg_entries", ["state", "next_at"])
    op.create_index("ix_msg_entries_user", "msg_entries", ["canvas_id", "user_num"])
    op.create_index("ix_msg_entries_ws_user", "msg_entries", ["workspace_id", "user_num", "state"])
    op.create_table(
        "msg_cursors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "msg_rates",
        sa.Column("program_id", sa.String(36), primary_key=True),
        sa.Column("minute", sa.BigInteger(), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "msg_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for name in (
        "msg_settings",
        "msg_rates",
        "msg_cursors",
        "msg_entries",
        "msg_jobs",
        "msg_sends",
        "msg_programs",
    ):
        op.drop_table(name)
