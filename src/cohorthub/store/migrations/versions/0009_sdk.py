"""SDK apps: their keys, allowed origins, devices, sessions, retry fingerprints and counters.

`sdk_sessions.user_num` has no foreign key: a merge moves an orphan's sessions to the profile it
merged into and a deletion removes them (the apps identity listener, in the identity transaction).

Revision ID: 0009_sdk
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_sdk"
down_revision = None
branch_labels = ("sdk",)
depends_on = "0001_core"

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sdk_apps",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "sdk_origins",
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("origin", sa.String(512), primary_key=True),
    )
    op.create_table(
        "sdk_devices",
        sa.Column("workspace_id", sa.String(32), primary_key=True),
        sa.Column("device_id", sa.String(512), primary_key=True),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("browser", sa.String(128)),
        sa.Column("browser_version", sa.String(128)),
        sa.Column("os_version", sa.String(128)),
        sa.Column("device_model", sa.String(128)),
        sa.Column("locale", sa.String(64)),
        sa.Column("time_zone", sa.String(64)),
        sa.Column("user_agent", sa.Text()),
        sa.Column("sdk_version", sa.String(32)),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
    )
    op.create_table(
        "sdk_sessions",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("app_id", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(512), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float()),
        sa.Column("duration", sa.Float()),
        sa.Column("first", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("workspace_id", "session_id", name="uq_sdk_sessions_session"),
    )
    op.create_index("ix_sdk_sessions_user", "sdk_sessions", ["user_num", "started_at"])
    op.create_index("ix_sdk_sessions_workspace_started", "sdk_sessions", ["workspace_id", "started_at"])
    op.create_table(
        "sdk_seen",
        sa.Column("workspace_id", sa.String(32), primary_key=True),
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
    )
    op.create_index("ix_sdk_seen_workspace_at", "sdk_seen", ["workspace_id", "at"])
    op.create_table(
        "sdk_counters",
        sa.Column("app_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sdk_counters")
    op.drop_index("ix_sdk_seen_workspace_at", table_name="sdk_seen")
    op.drop_table("sdk_seen")
    op.drop_index("ix_sdk_sessions_workspace_started", table_name="sdk_sessions")
    op.drop_index("ix_sdk_sessions_user", table_name="sdk_sessions")
    op.drop_table("sdk_sessions")
    op.drop_table("sdk_devices")
    op.drop_table("sdk_origins")
    op.drop_table("sdk_apps")
