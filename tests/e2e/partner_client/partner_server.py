"""A protocol-faithful partner cohort import server for tests (stdlib ``http.server``).

It implements ``POST /partners/{partner}/cohorts`` and ``/cohorts/users`` as the reference
describes them (§1.2-1.4: keys in the body, the exact 400/401 messages, the 1,000-identifier
limit counted across the request, all-or-nothing, ``201 {"message": "success"}``), records
every request, and can be told to answer 429/423/5xx/401/400, to drop the connection, or to
hold a request (after applying it) so a test can kill the client mid-sync.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LIMIT_MESSAGE = "Only 1,000 `user_ids`, `device_ids`, and `aliases` are allowed per request"
CHANGES_MESSAGE = (
    "`cohort_changes` must be an array of objects each with key `user_ids` and/or `device_ids` "
    "mapping to an array of strings, or an `aliases` object"
)
DEFAULT_SECRET = "DIK"
_PATH = re.compile(r"^/partners/([^/]+)/cohorts(/users)?/?$")
Member = tuple[str, str]


@dataclass
class Recorded:
    """One request as received, and the status answered (0 when the connection was dropped)."""

    path: str
    body: dict[str, Any]
    status: int


@dataclass
class Fault:
    """A scripted answer: a status (with optional Retry-After and message), or a dropped connection."""

    status: int = 0
    retry_after: str | None = None
    message: str = ""
    drop: bool = False
    passthrough: bool = False


@dataclass
class CohortRecord:
    """What the server knows of one cohort of one workspace."""

    name: str = ""
    created_at: str = ""
    members: set[Member] = field(default_factory=set)


class PartnerServer:
    """Start with ``with PartnerServer() as server:``; ``server.url`` is the endpoint."""

    def __init__(
        self, *, partner: str = "heap", partner_key: str = "PK", secrets: dict[str, set[str]] | None = None
    ):
        self.partner = partner
        self.partner_key = partner_key
        self.secrets = secrets if secrets is not None else {DEFAULT_SECRET: {partner}}
        self.requests: list[Recorded] = []
        self.cohorts: dict[tuple[str, str], CohortRecord] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._hold_after: int | None = None
        self.held = threading.Event()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> PartnerServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- scripting -------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | None = None,
        message: str = "",
        after: int = 0,
    ) -> None:
        """Let ``after`` requests through normally, then answer ``times`` requests with ``status``."""
        with self._lock:
            self._faults.extend(Fault(passthrough=True) for _ in range(after))
            self._faults.extend(Fault(status, retry_after, message) for _ in range(times))

    def drop_next(self, times: int = 1) -> None:
        """Close the connection of the next ``times`` requests without answering."""
        with self._lock:
            self._faults.extend(Fault(drop=True) for _ in range(times))

    def hold_after(self, acknowledged: int) -> None:
        """After ``acknowledged`` successful ``/cohorts/users`` requests, apply the next one, then hold
        its answer until ``release()`` (``held`` is set when that happens)."""
        self._hold_after = acknowledged

    def release(self) -> None:
        """Let a held request answer."""
        self._hold_after = None
        self._release.set()

    # --- reading ---------------------------------------------------------------------------
    def members(self, cohort_id: str, client_secret: str = DEFAULT_SECRET) -> set[Member]:
        """The membership of a cohort as ``{(namespace, identifier)}``."""
        record = self.cohorts.get((client_secret, cohort_id))
        return set(record.members) if record else set()

    def name(self, cohort_id: str, client_secret: str = DEFAULT_SECRET) -> str | None:
        """The cohort's name, or ``None`` if unknown."""
        record = self.cohorts.get((client_secret, cohort_id))
        return record.name if record and record.name else None

    def users_requests(self, status: int = 201) -> list[Recorded]:
        """The ``/cohorts/users`` requests answered with ``status``."""
        return [r for r in self.requests if r.path.endswith("/users") and r.status == status]

    def identifiers_received(self) -> int:
        """Identifiers in acknowledged ``/cohorts/users`` requests."""
        return sum(_count(r.body["cohort_changes"]) for r in self.users_requests())

    # --- protocol --------------------------------------------------------------------------
    def handle(self, path: str, body: Any) -> tuple[int, dict[str, Any], Fault | None]:
        """Answer one request: (status, JSON body, fault applied)."""
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.passthrough:
            fault = None
        if fault is not None:
            if fault.drop:
                return 0, {}, fault
            default = {423: "Resource locked", 429: "Too many requests"}.get(fault.status, "Internal error")
            return fault.status, {"message": fault.message or default}, fault
        match = _PATH.match(path)
        if match is None:
            return 404, {"message": "Not found"}, None
        if not isinstance(body, dict):
            return 400, {"message": "Invalid JSON body"}, None
        refusal = self._authenticate(match.group(1), body)
        if refusal is not None:
            return 401, {"message": refusal}, None
        cohort_id = body.get("cohort_id")
        if not isinstance(cohort_id, str) or not cohort_id:
            return 400, {"message": "`cohort_id` must be a valid string"}, None
        error = self._users(body, cohort_id) if match.group(2) else self._name(body, cohort_id)
        if error is not None:
            return 400, {"message": error}, None
        return 201, {"message": "success"}, None

    def _authenticate(self, partner: str, body: dict[str, Any]) -> str | None:
        if partner != self.partner or body.get("partner_api_key") != self.partner_key:
            return "Invalid Partner API key"
        secret = body.get("client_secret")
        if not isinstance(secret, str) or secret not in self.secrets:
            return "Invalid client secret"
        if partner not in self.secrets[secret]:
            return f"Partner not enabled for client with client secret: {secret}"
        return None

    def _name(self, body: dict[str, Any], cohort_id: str) -> str | None:
        name, created_at = body.get("name"), body.get("created_at")
        if not isinstance(name, str) or not name.strip():
            return "`name` must be a non-empty string"
        try:
            datetime.fromisoformat(str(created_at))
        except ValueError:
            return "`created_at` must be a valid time as an ISO-8601 string"
        with self._lock:
            record = self.cohorts.setdefault((body["client_secret"], cohort_id), CohortRecord())
            record.name, record.created_at = name, record.created_at or str(created_at)
        return None

    def _users(self, body: dict[str, Any], cohort_id: str) -> str | None:
        changes = body.get("cohort_changes")
        parsed = _parse_changes(changes)
        if parsed is None:
            return CHANGES_MESSAGE
        assert isinstance(changes, list)
        if _count(changes) > 1000:
            return LIMIT_MESSAGE
        with self._lock:
            record = self.cohorts.setdefault((body["client_secret"], cohort_id), CohortRecord(name=cohort_id))
            for remove, members in parsed:
                if remove:
                    record.members -= members
                else:
                    record.members |= members
        return None

    def maybe_hold(self, path: str) -> None:
        """Hold an applied ``/cohorts/users`` answer when scripted to."""
        if self._hold_after is None or not path.endswith("/users"):
            return
        if len(self.users_requests()) > self._hold_after:
            self.held.set()
            self._release.wait(timeout=30)


def _count(changes: list[dict[str, Any]]) -> int:
    return sum(
        len(c.get("user_ids") or []) + len(c.get("device_ids") or []) + len(c.get("aliases") or [])
        for c in changes
    )


def _parse_changes(changes: Any) -> list[tuple[bool, set[Member]]] | None:
    if not isinstance(changes, list):
        return None
    parsed = []
    for change in changes:
        if not isinstance(change, dict) or not ({"user_ids", "device_ids", "aliases"} & change.keys()):
            return None
        members: set[Member] = set()
        for key, namespace in (("user_ids", "external_id"), ("device_ids", "device_id")):
            values = change.get(key, [])
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                return None
            members |= {(namespace, v) for v in values}
        aliases = change.get("aliases", [])
        if not isinstance(aliases, list):
            return None
        for alias in aliases:
            if not isinstance(alias, dict) or not all(
                isinstance(alias.get(k), str) for k in ("alias_name", "alias_label")
            ):
                return None
            members.add(("alias:" + alias["alias_label"], alias["alias_name"]))
        parsed.append((bool(change.get("should_remove")), members))
    return parsed


def _handler(server: PartnerServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            status, payload, fault = server.handle(self.path, body)
            server.requests.append(Recorded(self.path, body if isinstance(body, dict) else {}, status))
            if fault is not None and fault.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if status == 201:
                server.maybe_hold(self.path)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if fault is not None and fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:
                self.close_connection = True

    return Handler


def main() -> None:
    """Run the server in the foreground (for the benchmark or manual tests)."""
    with PartnerServer() as server:
        print(server.url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
