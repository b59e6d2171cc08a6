"""Segments: definitions, size history, membership snapshots, deletion tombstones.

Also indexes `users(workspace_id, updated_at)`, which the segment indexes catch up from.

Revision ID: 0005_segments
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_segments"
down_revision = None
branch_labels = ("segments",)
depends_on = "0001_core"

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("pk", _BigId, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("filter", sa.Text(), nullable=False),
        sa.Column("filter_version", sa.Integer(), nullable=False),
        sa.Column("analytics_tracking_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("archived_at", sa.Float()),
    )
    op.create_index("ix_segments_workspace", "segments", ["workspace_id", "created_at"])
    op.create_table(
        "segment_sizes",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "segment_pk", sa.BigInteger(), sa.ForeignKey("segments.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_segment_sizes_segment_at", "segment_sizes", ["segment_pk", "at"])
    op.create_table(
        "segment_snapshots",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "segment_pk", sa.BigInteger(), sa.ForeignKey("segments.pk", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("bitmap", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_segment_snapshots_segment_at", "segment_snapshots", ["segment_pk", "at"])
    op.create_table(
        "segment_user_deletions",
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_users_workspace_updated_at", "users", ["workspace_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_users_workspace_updated_at", table_name="users")
    op.drop_table("segment_user_deletions")
    op.drop_table("segment_snapshots")
    op.drop_table("segment_sizes")
    op.drop_index("ix_segments_workspace", table_name="segments")
    op.drop_table("segments")
