"""Tables of the `partners_auth` migration branch (0011_partners_auth); the migration creates them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, String, Table, Text

from cohorthub.store.tables import metadata

partner_key_sightings = Table(
    "partner_key_sightings",
    metadata,
    Column("workspace_id", String(32), primary_key=True),
    Column("partner", String(64), primary_key=True),
    Column("fingerprint", String(32), primary_key=True),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("requests", BigInteger, nullable=False),
)

server_addresses = Table(
    "server_addresses",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)
