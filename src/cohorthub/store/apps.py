"""SQL repository for SDK apps: keys, origins, devices, sessions, retry fingerprints, counters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from cohorthub.apps.model import App, Device
from cohorthub.apps.ports import SessionStart

_meta = MetaData()  # migration 0009_sdk creates these tables; this metadata only describes them
_Id = BigInteger().with_variant(Integer(), "sqlite")

sdk_apps = Table(
    "sdk_apps",
    _meta,
    Column("id", String(32), primary_key=True),
    Column("workspace_id", String(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
)
sdk_origins = Table(
    "sdk_origins",
    _meta,
    Column("workspace_id", String(32), primary_key=True),
    Column("origin", String(512), primary_key=True),
)
_DEVICE_COLUMNS = (
    "platform",
    "browser",
    "browser_version",
    "os_version",
    "device_model",
    "locale",
    "time_zone",
    "user_agent",
    "sdk_version",
)
sdk_devices = Table(
    "sdk_devices",
    _meta,
    Column("workspace_id", String(32), primary_key=True),
    Column("device_id", String(512), primary_key=True),
    Column("app_id", String(32), nullable=False),
    *(Column(name, Text) for name in _DEVICE_COLUMNS),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)
sdk_sessions = Table(
    "sdk_sessions",
    _meta,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("workspace_id", String(32), nullable=False),
    Column("session_id", String(128), nullable=False),
    Column("user_num", BigInteger, nullable=False),
    Column("app_id", String(32), nullable=False),
    Column("device_id", String(512), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("duration", Float),
    Column("first", Boolean, nullable=False),
    sqlite_autoincrement=True,  # ids are never reused (0015_ids_autoincrement)
)
sdk_seen = Table(
    "sdk_seen",
    _meta,
    Column("workspace_id", String(32), primary_key=True),
    Column("fingerprint", String(64), primary_key=True),
    Column("at", Float, nullable=False),
)
sdk_counters = Table(
    "sdk_counters",
    _meta,
    Column("app_id", String(32), primary_key=True),
    Column("name", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
_CHUNK = 500


def _chunks(items: list[Any]) -> list[list[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _prepared(build: Any) -> dict[str, Any]:
    """One statement per dialect, built once with bind parameters (compiled once, then cached)."""
    return {"postgresql": build(postgresql.insert), "sqlite": build(sqlite.insert)}


def _count_upsert(dialect_insert: Any) -> Any:
    stmt = dialect_insert(sdk_counters).values(
        app_id=bindparam("b_app"), name=bindparam("b_name"), count=bindparam("b_n")
    )
    total = sdk_counters.c.count + stmt.excluded.count
    return stmt.on_conflict_do_update(index_elements=["app_id", "name"], set_={"count": total})


def _device_upsert(with_fields: bool) -> Any:
    def build(dialect_insert: Any) -> Any:
        values: dict[str, Any] = {
            name: bindparam(f"b_{name}") for name in ("workspace_id", "device_id", "app_id", *_DEVICE_COLUMNS)
        }
        stmt = dialect_insert(sdk_devices).values(
            first_seen=bindparam("b_now"), last_seen=bindparam("b_now"), **values
        )
        changes = {"last_seen": stmt.excluded.last_seen, "app_id": stmt.excluded.app_id}
        if with_fields:
            changes |= {name: stmt.excluded[name] for name in _DEVICE_COLUMNS}
        return stmt.on_conflict_do_update(index_elements=["workspace_id", "device_id"], set_=changes)

    return build


_COUNT = _prepared(_count_upsert)
_DEVICE = {True: _prepared(_device_upsert(True)), False: _prepared(_device_upsert(False))}


def _app(row: Any) -> App:
    return App(id=row.id, workspace_id=row.workspace_id, name=row.name, created_at=row.created_at)


class SqlAppRepository:
    """SDK apps and what their devices send, bound to one transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, app: App, key_hash: str) -> None:
        """Store an app and its key hash."""
        values = {
            "id": app.id,
            "workspace_id": app.workspace_id,
            "name": app.name,
            "created_at": app.created_at,
        }
        self._conn.execute(insert(sdk_apps).values(key_hash=key_hash, **values))

    def by_key_hash(self, key_hash: str) -> App | None:
        """The app with that key, if any."""
        row = self._conn.execute(select(sdk_apps).where(sdk_apps.c.key_hash == key_hash)).first()
        return _app(row) if row else None

    def all(self, workspace_id: str) -> list[App]:
        """A workspace's apps, oldest first."""
        query = select(sdk_apps).where(sdk_apps.c.workspace_id == workspace_id)
        return [_app(r) for r in self._conn.execute(query.order_by(sdk_apps.c.created_at, sdk_apps.c.id))]

    def origins(self, workspace_id: str) -> list[str]:
        """The allowed page origins (empty: any)."""
        query = select(sdk_origins.c.origin).where(sdk_origins.c.workspace_id == workspace_id)
        return sorted(self._conn.execute(query).scalars())

    def set_origins(self, workspace_id: str, origins: list[str]) -> None:
        """Replace the allowed page origins."""
        self._conn.execute(delete(sdk_origins).where(sdk_origins.c.workspace_id == workspace_id))
        if origins:
            self._conn.execute(
                insert(sdk_origins), [{"workspace_id": workspace_id, "origin": o} for o in origins]
            )

    def device(self, workspace_id: str, device_id: str) -> Device | None:
        """What the device last said about itself."""
        row = self._conn.execute(
            select(*(sdk_devices.c[name] for name in _DEVICE_COLUMNS)).where(
                sdk_devices.c.workspace_id == workspace_id, sdk_devices.c.device_id == device_id
            )
        ).first()
        return Device(**row._mapping) if row else None

    def save_device(
        self, workspace_id: str, device_id: str, app_id: str, device: Device | None, *, now: float
    ) -> None:
        """Record that the device was seen, with its fields when it sent them (one upsert)."""
        fields = {f"b_{name}": getattr(device or Device(), name) for name in _DEVICE_COLUMNS}
        params = {"b_workspace_id": workspace_id, "b_device_id": device_id, "b_app_id": app_id, "b_now": now}
        self._conn.execute(_DEVICE[device is not None][self._conn.dialect.name], params | fields)

    def remember_new(self, workspace_id: str, fingerprints: list[str], *, now: float) -> set[str]:
        """Store the fingerprints not stored yet (the caller holds the workspace's lock); return those."""
        new = set(fingerprints)
        for chunk in _chunks(sorted(new)):
            query = select(sdk_seen.c.fingerprint).where(
                sdk_seen.c.workspace_id == workspace_id, sdk_seen.c.fingerprint.in_(chunk)
            )
            new.difference_update(self._conn.execute(query).scalars())
        if new:
            rows = [{"workspace_id": workspace_id, "fingerprint": f, "at": now} for f in sorted(new)]
            self._conn.execute(insert(sdk_seen), rows)
        return new

    def forget_seen(self, workspace_id: str, before: float, *, limit: int) -> int:
        """Drop up to `limit` of the workspace's fingerprints stored before `before`; return how many."""
        mine = sdk_seen.c.workspace_id == workspace_id
        old = (
            select(sdk_seen.c.fingerprint)
            .where(mine, sdk_seen.c.at < before)
            .order_by(sdk_seen.c.at)
            .limit(limit)
        )
        # `fingerprint IN (subquery)` beside the workspace: primary-key lookups, never a scan
        return int(self._conn.execute(delete(sdk_seen).where(mine, sdk_seen.c.fingerprint.in_(old))).rowcount)

    def users_with_sessions(self, workspace_id: str, user_nums: list[int]) -> set[int]:
        """Which of these users already have a session."""
        found: set[int] = set()
        for chunk in _chunks(user_nums):
            query = select(sdk_sessions.c.user_num).where(
                sdk_sessions.c.workspace_id == workspace_id, sdk_sessions.c.user_num.in_(chunk)
            )
            found.update(int(n) for n in self._conn.execute(query.distinct()).scalars())
        return found

    def _existing(self, workspace_id: str, session_ids: list[str]) -> set[str]:
        query = select(sdk_sessions.c.session_id).where(
            sdk_sessions.c.workspace_id == workspace_id, sdk_sessions.c.session_id.in_(session_ids)
        )
        return set(self._conn.execute(query).scalars()) if session_ids else set()

    def start_sessions(self, workspace_id: str, app_id: str, starts: list[SessionStart]) -> None:
        """Store session starts (a session already stored is kept as it is)."""
        existing = self._existing(workspace_id, [s.session_id for s in starts])
        rows = {
            s.session_id: _session_row(workspace_id, app_id, s)
            for s in starts
            if s.session_id not in existing
        }
        if rows:
            self._conn.execute(insert(sdk_sessions), list(rows.values()))

    def end_session(
        self, workspace_id: str, app_id: str, start: SessionStart, *, ended_at: float, duration: float
    ) -> None:
        """Close a session; one whose start never arrived is stored from its end and duration."""
        where = (sdk_sessions.c.workspace_id == workspace_id, sdk_sessions.c.session_id == start.session_id)
        done = self._conn.execute(
            update(sdk_sessions).where(*where).values(ended_at=ended_at, duration=duration)
        )
        if done.rowcount == 0:
            row = _session_row(workspace_id, app_id, start) | {"ended_at": ended_at, "duration": duration}
            self._conn.execute(insert(sdk_sessions).values(**row))

    def move_sessions(self, moves: list[tuple[int, int]]) -> None:
        """Give each orphan's sessions to its merge target."""
        for orphan, target in moves:
            self._conn.execute(
                update(sdk_sessions).where(sdk_sessions.c.user_num == orphan).values(user_num=target)
            )

    def delete_sessions(self, user_nums: list[int]) -> None:
        """Remove the users' sessions."""
        for chunk in _chunks(user_nums):
            self._conn.execute(delete(sdk_sessions).where(sdk_sessions.c.user_num.in_(chunk)))

    def count(self, app_id: str, counts: Mapping[str, int]) -> None:
        """Add to the app's counters (one upsert per counter, sent together)."""
        rows = [{"b_app": app_id, "b_name": name, "b_n": n} for name, n in sorted(counts.items())]
        if rows:
            self._conn.execute(_COUNT[self._conn.dialect.name], rows)

    def counters(self, app_id: str) -> dict[str, int]:
        """The app's counters by name."""
        query = select(sdk_counters.c.name, sdk_counters.c.count).where(sdk_counters.c.app_id == app_id)
        return {name: int(n) for name, n in self._conn.execute(query)}


def _session_row(workspace_id: str, app_id: str, start: SessionStart) -> dict[str, Any]:
    return {
        "workspace_id": workspace_id,
        "session_id": start.session_id,
        "user_num": start.user_num,
        "app_id": app_id,
        "device_id": start.device_id,
        "started_at": start.started_at,
        "first": start.first,
    }
