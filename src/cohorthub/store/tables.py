"""The core schema (SQLAlchemy Core). Times are Unix seconds (float, UTC).

`users.num` is the dense internal user number that cohort bitmaps and segment
bitmaps hold; `braze_id` is the public 24-hex id. Cohort membership is kept as a
snapshot of roaring-bitmap chunks (`cohort_chunks`, one per 2**16 user numbers) plus
the append-only change log (`cohort_changes`); the current set is the snapshot at
`cohorts.snapshot_version` with every change of a later version applied.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

BigId = BigInteger().with_variant(Integer(), "sqlite")

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
)

rest_api_keys = Table(
    "rest_api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), ForeignKey("workspaces.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("permissions", Text, nullable=False),  # JSON list of permission names
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

partner_api_keys = Table(
    "partner_api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("partner", String(64), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),  # set when rotated (grace period) or revoked
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

partner_integrations = Table(
    "partner_integrations",
    metadata,
    Column("workspace_id", String(32), ForeignKey("workspaces.id"), primary_key=True),
    Column("partner", String(64), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("auth_mode", String(32), nullable=False, server_default="partner_key"),  # 0011_partners_auth
)

data_import_keys = Table(
    "data_import_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), ForeignKey("workspaces.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Index("ix_data_import_keys_workspace_partner", "workspace_id", "partner"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("key_id", BigInteger, primary_key=True),
    Column("window_start", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("num", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), ForeignKey("workspaces.id"), nullable=False),
    Column("braze_id", String(24), nullable=False, unique=True),
    Column("external_id", String(512)),
    Column("email", String(320)),
    Column("phone", String(64)),
    Column("first_name", String(256)),
    Column("last_name", String(256)),
    Column("gender", String(16)),
    Column("dob", String(10)),
    Column("country", String(64)),
    Column("home_city", String(256)),
    Column("language", String(32)),
    Column("time_zone", String(64)),
    Column("email_subscribe", String(16)),
    Column("custom_attributes", Text, nullable=False, default="{}"),  # JSON object
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Stamped by trigger on every insert and update (migration 0007_scale); segment catch-up reads it.
    Column("change_id", BigInteger, index=True),
    UniqueConstraint("workspace_id", "external_id", name="uq_users_workspace_external_id"),
    # Partial on PostgreSQL (0017_pg_partial_contact_indexes): only lookups by e-mail or phone use them.
    Index("ix_users_workspace_email", "workspace_id", "email", postgresql_where=text("email IS NOT NULL")),
    Index("ix_users_workspace_phone", "workspace_id", "phone", postgresql_where=text("phone IS NOT NULL")),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

user_aliases = Table(
    "user_aliases",
    metadata,
    Column("workspace_id", String(32), primary_key=True),
    Column("alias_label", String(512), primary_key=True),
    Column("alias_name", String(512), primary_key=True),
    Column("user_num", BigInteger, ForeignKey("users.num", ondelete="CASCADE"), nullable=False, index=True),
)

user_devices = Table(
    "user_devices",
    metadata,
    Column("workspace_id", String(32), primary_key=True),
    Column("device_id", String(512), primary_key=True),
    Column("user_num", BigInteger, ForeignKey("users.num", ondelete="CASCADE"), nullable=False, index=True),
)

custom_events = Table(
    "custom_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("user_num", BigInteger, ForeignKey("users.num", ondelete="CASCADE"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("time", Float, nullable=False),
    Column("properties", Text, nullable=False, default="{}"),
    Column("app_id", String(64)),
    Index("ix_custom_events_workspace_name_user", "workspace_id", "name", "user_num"),
    Index("ix_custom_events_user", "user_num"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

purchases = Table(
    "purchases",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("user_num", BigInteger, ForeignKey("users.num", ondelete="CASCADE"), nullable=False),
    Column("product_id", String(256), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("price", Float, nullable=False),
    Column("quantity", Integer, nullable=False, default=1),
    Column("time", Float, nullable=False),
    Column("properties", Text, nullable=False, default="{}"),
    Column("app_id", String(64)),
    Index("ix_purchases_workspace_product_user", "workspace_id", "product_id", "user_num"),
    Index("ix_purchases_user", "user_num"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

cohorts = Table(
    "cohorts",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), ForeignKey("workspaces.id"), nullable=False),
    Column("partner", String(64), nullable=False),
    Column("cohort_id", String(512), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("named", Boolean, nullable=False),  # False until the name endpoint was called
    Column("partner_created_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("version", BigInteger, nullable=False, default=0),
    Column("size", BigInteger, nullable=False, default=0),
    Column("snapshot_version", BigInteger, nullable=False, default=0),
    Column("last_import_at", Float),
    Column("import_requests", BigInteger, nullable=False, default=0),
    Column("identifiers_matched", BigInteger, nullable=False, default=0),
    Column("identifiers_unmatched", BigInteger, nullable=False, default=0),
    Column("unmatched_sample", Text, nullable=False, default="[]"),  # JSON list
    UniqueConstraint("workspace_id", "partner", "cohort_id", name="uq_cohorts_workspace_partner_cohort"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

cohort_chunks = Table(
    "cohort_chunks",
    metadata,
    Column("cohort_pk", BigInteger, ForeignKey("cohorts.pk", ondelete="CASCADE"), primary_key=True),
    Column("chunk_no", Integer, primary_key=True),
    Column("bitmap", LargeBinary, nullable=False),
)

cohort_changes = Table(
    "cohort_changes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("cohort_pk", BigInteger, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("user_num", BigInteger, nullable=False),
    Column("entered", Boolean, nullable=False),
    Column("at", Float, nullable=False),
    Column("request_id", String(36)),
    Column("reason", String(16), nullable=False),  # import | merge | delete
    Index("ix_cohort_changes_cohort_version", "cohort_pk", "version"),
    Index("ix_cohort_changes_cohort_at", "cohort_pk", "at"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)

cohort_import_requests = Table(
    "cohort_import_requests",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("cohort_pk", BigInteger, ForeignKey("cohorts.pk", ondelete="CASCADE"), nullable=False, index=True),
    Column("received_at", Float, nullable=False),
    Column("identifiers", Integer, nullable=False),
    Column("matched", Integer, nullable=False),
    Column("unmatched", Integer, nullable=False),
    Column("entered", Integer, nullable=False),
    Column("left", Integer, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigId, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("event_type", String(128), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the Currents event as JSON bytes
    Column("created_at", Float, nullable=False),
    Index("ix_outbox_workspace_seq", "workspace_id", "seq"),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
