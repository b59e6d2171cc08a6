"""Core schema: workspaces, keys, partners, identity, events, cohorts, outbox.

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:

    op.create_table(
        "outbox",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_workspace_seq", ["workspace_id", "seq"], unique=False)

    op.create_table(
        "partner_api_keys",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_partner_api_keys_key_hash")),
    )
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_api_keys_partner"), ["partner"], unique=False)

    op.create_table(
        "rate_windows",
        sa.Column("key_id", sa.BigInteger(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "window_start", name=op.f("pk_rate_windows")),
    )
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workspaces")),
    )
    op.create_table(
        "cohorts",
        sa.Column(
            "pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("cohort_id", sa.String(length=512), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("partner_created_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_version", sa.BigInteger(), nullable=False),
        sa.Column("last_import_at", sa.Float(), nullable=True),
        sa.Column("import_requests", sa.BigInteger(), nullable=False),
        sa.Column("identifiers_matched", sa.BigInteger(), nullable=False),
        sa.Column("identifiers_unmatched", sa.BigInteger(), nullable=False),
        sa.Column("unmatched_sample", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_cohorts_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_cohorts")),
        sa.UniqueConstraint(
            "workspace_id", "partner", "cohort_id", name="uq_cohorts_workspace_partner_cohort"
        ),
    )
    op.create_table(
        "data_import_keys",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_data_import_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_import_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_data_import_keys_key_hash")),
    )
    with op.batch_alter_table("data_import_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_data_import_keys_workspace_partner", ["workspace_id", "partner"], unique=False
        )

    op.create_table(
        "partner_integrations",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_partner_integrations_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "partner", name=op.f("pk_partner_integrations")),
    )
    op.create_table(
        "rest_api_keys",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_rest_api_keys_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rest_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_rest_api_keys_key_hash")),
    )
    with op.batch_alter_table("rest_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rest_api_keys_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "num", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("braze_id", sa.String(length=24), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=256), nullable=True),
        sa.Column("last_name", sa.String(length=256), nullable=True),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("dob", sa.String(length=10), nullable=True),
        sa.Column("country", sa.String(length=64), nullable=True),
        sa.Column("home_city", sa.String(length=256), nullable=True),
        sa.Column("language", sa.String(length=32), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("email_subscribe", sa.String(length=16), nullable=True),
        sa.Column("custom_attributes", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_users_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("num", name=op.f("pk_users")),
        sa.UniqueConstraint("braze_id", name=op.f("uq_users_braze_id")),
        sa.UniqueConstraint("workspace_id", "external_id", name="uq_users_workspace_external_id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index("ix_users_workspace_email", ["workspace_id", "email"], unique=False)
        batch_op.create_index("ix_users_workspace_phone", ["workspace_id", "phone"], unique=False)

    op.create_table(
        "cohort_changes",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("cohort_pk", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("entered", sa.Boolean(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_pk"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_changes_cohort_pk_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_changes")),
    )
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.create_index("ix_cohort_changes_cohort_at", ["cohort_pk", "at"], unique=False)
        batch_op.create_index("ix_cohort_changes_cohort_version", ["cohort_pk", "version"], unique=False)

    op.create_table(
        "cohort_chunks",
        sa.Column("cohort_pk", sa.BigInteger(), nullable=False),
        sa.Column("chunk_no", sa.Integer(), nullable=False),
        sa.Column("bitmap", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_pk"], ["cohorts.pk"], name=op.f("fk_cohort_chunks_cohort_pk_cohorts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cohort_pk", "chunk_no", name=op.f("pk_cohort_chunks")),
    )
    op.create_table(
        "cohort_import_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("cohort_pk", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("identifiers", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("unmatched", sa.Integer(), nullable=False),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("left", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cohort_pk"],
            ["cohorts.pk"],
            name=op.f("fk_cohort_import_requests_cohort_pk_cohorts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cohort_import_requests")),
    )
    with op.batch_alter_table("cohort_import_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_import_requests_cohort_pk"), ["cohort_pk"], unique=False)

    op.create_table(
        "custom_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_num"], ["users.num"], name=op.f("fk_custom_events_user_num_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_events")),
    )
    with op.batch_alter_table("custom_events", schema=None) as batch_op:
        batch_op.create_index("ix_custom_events_user", ["user_num"], unique=False)
        batch_op.create_index(
            "ix_custom_events_workspace_name_user", ["workspace_id", "name", "user_num"], unique=False
        )

    op.create_table(
        "purchases",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.String(length=256), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=False),
        sa.Column("app_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_num"], ["users.num"], name=op.f("fk_purchases_user_num_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchases")),
    )
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.create_index("ix_purchases_user", ["user_num"], unique=False)
        batch_op.create_index(
            "ix_purchases_workspace_product_user", ["workspace_id", "product_id", "user_num"], unique=False
        )

    op.create_table(
        "user_aliases",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("alias_label", sa.String(length=512), nullable=False),
        sa.Column("alias_name", sa.String(length=512), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_num"], ["users.num"], name=op.f("fk_user_aliases_user_num_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "alias_label", "alias_name", name=op.f("pk_user_aliases")),
    )
    with op.batch_alter_table("user_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_aliases_user_num"), ["user_num"], unique=False)

    op.create_table(
        "user_devices",
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=512), nullable=False),
        sa.Column("user_num", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_num"], ["users.num"], name=op.f("fk_user_devices_user_num_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workspace_id", "device_id", name=op.f("pk_user_devices")),
    )
    with op.batch_alter_table("user_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_devices_user_num"), ["user_num"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("user_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_devices_user_num"))

    op.drop_table("user_devices")
    with op.batch_alter_table("user_aliases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_aliases_user_num"))

    op.drop_table("user_aliases")
    with op.batch_alter_table("purchases", schema=None) as batch_op:
        batch_op.drop_index("ix_purchases_workspace_product_user")
        batch_op.drop_index("ix_purchases_user")

    op.drop_table("purchases")
    with op.batch_alter_table("custom_events", schema=None) as batch_op:
        batch_op.drop_index("ix_custom_events_workspace_name_user")
        batch_op.drop_index("ix_custom_events_user")

    op.drop_table("custom_events")
    with op.batch_alter_table("cohort_import_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_import_requests_cohort_pk"))

    op.drop_table("cohort_import_requests")
    op.drop_table("cohort_chunks")
    with op.batch_alter_table("cohort_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_cohort_changes_cohort_version")
        batch_op.drop_index("ix_cohort_changes_cohort_at")

    op.drop_table("cohort_changes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_workspace_phone")
        batch_op.drop_index("ix_users_workspace_email")

    op.drop_table("users")
    with op.batch_alter_table("rest_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rest_api_keys_workspace_id"))

    op.drop_table("rest_api_keys")
    op.drop_table("partner_integrations")
    with op.batch_alter_table("data_import_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_data_import_keys_workspace_partner")

    op.drop_table("data_import_keys")
    op.drop_table("cohorts")
    op.drop_table("workspaces")
    op.drop_table("rate_windows")
    with op.batch_alter_table("partner_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_api_keys_partner"))

    op.drop_table("partner_api_keys")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_workspace_seq")

    op.drop_table("outbox")
