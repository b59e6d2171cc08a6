"""Partner authentication modes, sightings of partner keys, and the server's recorded addresses.

- `partner_integrations.auth_mode`: `partner_key` (both keys checked, the default) or
  `data_import_key_only` (any partner key accepted with a valid data import key; its
  fingerprint is recorded in `partner_key_sightings`).
- `server_addresses`: the address `cohorthub serve` listens on and its configured public URL,
  so `partner enable` and `partner show` print the REST endpoint partners must use.

Revision ID: 0011_partners_auth
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_partners_auth"
down_revision = None
branch_labels = ("partners_auth",)
depends_on = "0001_core"


def upgrade() -> None:
    with op.batch_alter_table("partner_integrations") as batch:
        batch.add_column(
            sa.Column("auth_mode", sa.String(32), nullable=False, server_default="partner_key")
        )
    op.create_table(
        "partner_key_sightings",
        sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "partner", "fingerprint", name="pk_partner_key_sightings"),
    )
    op.create_table(
        "server_addresses",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_addresses"),
    )


def downgrade() -> None:
    op.drop_table("server_addresses")
    op.drop_table("partner_key_sightings")
    with op.batch_alter_table("partner_integrations") as batch:
        batch.drop_column("auth_mode")
