"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, a wired
container, and a real HTTP server on loopback.

PostgreSQL: one database per test session is created on the server named by
`COHORTHUB_TEST_POSTGRES_URL` (default: postgres@127.0.0.1:5432/test) and dropped at the end,
so parallel runs never share tables; tables are truncated between tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, inspect, text

from cohorthub.api.app import create_app
from cohorthub.bootstrap import Container, bootstrap
from cohorthub.config import Settings
from cohorthub.store import migrate
from cohorthub.store.db import create_db_engine, normalize_url

PG_ADMIN_URL = normalize_url(
    os.environ.get("COHORTHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
BACKENDS = ["sqlite", "postgresql"]

#: No test asserts a timing, property tests included: Hypothesis's default 200 ms deadline per example, and
#: its health check on slow data generation, fail a correct test on a busy machine (the suite runs in
#: several processes on few cores).
settings.register_profile("cohorthub", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cohorthub")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    engine = create_db_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this session's own."""
    name = f"cohorthub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_db_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    names = [n for n in inspect(engine).get_table_names() if n != "alembic_version"]
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated, empty database on each backend."""
    if request.param == "sqlite":
        target = tmp_path / "cohorthub.sqlite"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for the test database."""
    return Settings(database_url=database_url, public_url="http://testserver")


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """The composition root on the test database."""
    c = bootstrap(settings, run_migrations=False)
    yield c
    c.close()


def clear_of_the_hours_end(seconds: float = 90.0) -> None:
    """Return once the next `seconds` fall within one clock hour (waiting past the hour if need be).

    Partner quotas are counted per clock hour: a test that spends a quota must not straddle two.
    """
    left = 3600 - time.time() % 3600
    if left < seconds:
        time.sleep(left + 1)


def free_port() -> int:
    """An ephemeral TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def error_body(response: Any) -> dict[str, Any]:
    """An error response's JSON without its `request_id`, checked against the `X-Request-Id` header."""
    body: dict[str, Any] = dict(response.json())
    assert body.pop("request_id") == response.headers["X-Request-Id"]
    return body


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 15) -> None:
    """Stop a child process the way an operator would: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RawHttpServer:
    """An HTTP endpoint on loopback written by hand, for answers no framework would give: each
    connection's request (head and `Content-Length` body) is read, then `answer` writes to the
    socket and the connection is closed. `requests` counts the requests read."""

    def __init__(self, path: str = "/") -> None:
        self.requests = 0
        self.done = threading.Event()  # set after each connection is closed
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"
        threading.Thread(target=self._serve, daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        """Write the answer (the default: 200 and `{}`)."""
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                lengths = [
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ]
                while len(rest) < int(lengths[0] if lengths else 0):
                    rest += conn.recv(65536)
                self.requests += 1
                with contextlib.suppress(OSError):  # the client closed the connection
                    self.answer(conn)
            self.done.set()

    def close(self) -> None:
        """Stop accepting connections."""
        self.sock.close()


class EndlessAnswer(RawHttpServer):
    """Answers `status` with a chunked body of `total` bytes, `piece` bytes every `pause` seconds,
    unless the client goes away first; `sent` counts what went out."""

    def __init__(self, status: int, *, total: int, piece: int = 1 << 20, pause: float = 0.0) -> None:
        self.status, self.total, self.piece, self.pause = status, total, piece, pause
        self.sent = 0
        super().__init__("/endless")

    def answer(self, conn: socket.socket) -> None:
        """The head, then pieces until `total` or until the client is gone."""
        chunk = b"%x\r\n%s\r\n" % (self.piece, b"x" * self.piece)
        conn.sendall(b"HTTP/1.1 %d Endless\r\nTransfer-Encoding: chunked\r\n\r\n" % self.status)
        while self.sent < self.total:
            conn.sendall(chunk)
            self.sent += self.piece
            time.sleep(self.pause)
        conn.sendall(b"0\r\n\r\n")


class LiveServer:
    """The real app served by uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, container: Container, *, app: Any = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app or create_app(container),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(container: Container) -> Iterator[LiveServer]:
    """A running HTTP server on loopback for e2e tests."""
    with LiveServer(container) as server:
        yield server
