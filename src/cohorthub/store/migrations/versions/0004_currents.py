"""Currents: connectors, leased batches, dead letters; on PostgreSQL an outbox xid column.

The `outbox.xid` column (PostgreSQL only) holds the writing transaction's id, so delivery
only reads rows whose transaction is older than every running one (`pg_snapshot_xmin`):
a `seq` that commits late can never be skipped by a cursor that already moved past it.

Revision ID: 0004_currents
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_currents"
down_revision = None
branch_labels = ("currents",)
depends_on = "0001_core"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "currents_connectors",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("cursor_xid", sa.BigInteger(), nullable=False),
        sa.Column("cursor_seq", sa.BigInteger(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=True),
        sa.Column("halted", sa.Boolean(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("retried", sa.BigInteger(), nullable=False),
        sa.Column("dropped", sa.BigInteger(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("last_success_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "currents_batches",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "connector_id",
            sa.String(32),
            sa.ForeignKey("currents_connectors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seqs", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("oldest_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", sa.Float(), nullable=True),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_currents_batches_due", "currents_batches", ["connector_id", "next_attempt_at"])
    op.create_table(
        "currents_dead_letters",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "connector_id",
            sa.String(32),
            sa.ForeignKey("currents_connectors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("dropped_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_currents_dead_letters_connector", "currents_dead_letters", ["connector_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE outbox ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()")
        op.execute("CREATE INDEX ix_outbox_workspace_xid_seq ON outbox (workspace_id, xid, seq)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_outbox_workspace_xid_seq")
        op.execute("ALTER TABLE outbox DROP COLUMN IF EXISTS xid")
    op.drop_table("currents_dead_letters")
    op.drop_table("currents_batches")
    op.drop_table("currents_connectors")
