"""Messaging benchmark: a campaign to a large segment through a local SMTP sink, and the reaction
time from a partner cohort import to the e-mail of a Canvas that starts when users enter the cohort.

For each store it prints, from the same run:
1. audience: the exact segment size computed by the engine (first, then warm);
2. campaign: e-mails per second end to end (audience, rendering with Liquid, ledger rows and Send
   events committed, the message handed to SMTP and acknowledged, Delivery events committed), one
   worker, `--connections` SMTP connections; the baseline sends the same pre-rendered messages over as
   many connections in bare `smtplib` loops to the same sink; the ratio is campaign / baseline. It also
   prints the CPU time the process used per e-mail (all its threads): on a shared machine the wall-clock
   rate depends on how much of a core the process got, the CPU per e-mail does not;
3. reaction: partner imports of `--reaction` users over HTTP (`POST /partners/heap/cohorts/users`,
   50 users per request), from each request's 2xx to each e-mail's arrival at the sink: p50 and p99.
   The messaging worker polls at its default interval (0.2 s); the import wakes it.

The SMTP sink is a minimal asyncio server in a child process: it answers 250 to every command,
offers PIPELINING, does not parse messages and keeps no mail (the reaction run's sink appends one
"time recipient" line per message to a file). The sink is not what bounds the baseline: during a
bare loop it uses about a third of a core; the loops wait on round trips (four per message with
smtplib). cohorthub uses PIPELINING when offered (two round trips per message). `--users 0` or
`--reaction 0` skips that part. The machine is shared, so figures are noisy.

    .venv/bin/python bench/messaging.py                          # 100k users, SQLite and PostgreSQL
    .venv/bin/python bench/messaging.py --users 1000000 --stores sqlite
    .venv/bin/python bench/messaging.py --users 1000000 --reaction 0 --audience-only   # the 1M audience
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

import httpx  # noqa: E402
from bench import segments as segments_bench  # noqa: E402
from tests.conftest import LiveServer  # noqa: E402

from cohorthub.bootstrap import Container, bootstrap  # noqa: E402
from cohorthub.config import Settings  # noqa: E402
from cohorthub.messaging import services as messaging  # noqa: E402
from cohorthub.messaging.channels.smtp import SmtpConfig, SmtpPool  # noqa: E402
from cohorthub.messaging.email import build_email  # noqa: E402
from cohorthub.messaging.ports import MemoryWebhookTransport  # noqa: E402
from cohorthub.messaging.tracking import Tracker  # noqa: E402
from cohorthub.partners import services as partners  # noqa: E402
from cohorthub.runtimes import messaging_runtime, start_messaging  # noqa: E402
from cohorthub.segments import services as segments  # noqa: E402
from cohorthub.workspaces import services as workspaces  # noqa: E402

NOW = time.time()
EMAIL = {
    "from": "Shop <news@shop.test>",
    "subject": "{{${first_name} | default: 'Hi'}}, your plan {{custom_attribute.${plan}}} is waiting",
    "body": "<html><body><p>Hello {{${first_name} | default: 'there'}},</p>"
    '<p><a href="https://shop.test/upgrade?u={{${user_id}}}">Upgrade</a></p>'
    '<p><a href="{{${set_user_to_unsubscribed_url}}}">Unsubscribe</a></p></body></html>',
}


# --- a minimal SMTP sink (child process) -------------------------------------------------------
class _Smtp(asyncio.Protocol):
    def __init__(self, log: IO[bytes] | None) -> None:
        self.buffer = b""
        self.data = False
        self.rcpt = b""
        self.log = log

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        while True:
            if self.data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    return
                self.buffer = self.buffer[end + 5 :]
                self.data = False
                if self.log is not None:
                    self.log.write(b"%.6f %s\n" % (time.time(), self.rcpt))
                    self.log.flush()
                self.transport.write(b"250 OK\r\n")
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                self.data = True
                self.transport.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 bye\r\n")
                self.transport.close()
                return
            else:
                if verb == b"RCPT":
                    self.rcpt = line[8:].strip(b"<> ")
                self.transport.write(b"250 OK\r\n")


def serve_sink(port: int, log: str | None = None) -> None:
    """Run the sink on `port` until the process ends (with `log`, append "time recipient" per message)."""
    out = open(log, "ab") if log else None  # noqa: SIM115
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(lambda: _Smtp(out), "127.0.0.1", port))
    loop.run_until_complete(server.serve_forever())


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sink_process(log: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    port = _port()
    extra = ["--sink-log", str(log)] if log else []
    proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port), *extra])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sink did not start")


# --- fixture -------------------------------------------------------------------------------------
def _database(store: str, tmp: Path) -> str:
    """A fresh database of `store` (its own SQLite file under `tmp`, or a new PostgreSQL database)."""
    folder = tmp / uuid.uuid4().hex[:6]
    folder.mkdir()
    return segments_bench._database(store, folder)


def _users(c: Container, ws: str, count: int) -> None:
    raw = c.engine.raw_connection()
    cur = raw.cursor()
    is_pg = c.engine.dialect.name == "postgresql"
    cols = "workspace_id, braze_id, external_id, email, first_name, custom_attributes, created_at, updated_at"
    ph = ",".join(["%s" if is_pg else "?"] * 8)
    if not is_pg:
        cur.execute("BEGIN")
    for start in range(0, count, 20000):
        rows = [(ws, uuid.uuid4().hex[:24], f"u{n}", f"u{n}@example.com", f"N{n}" if n % 3 else None,
                 '{"plan": "gold"}', NOW, NOW) for n in range(start, min(start + 20000, count))]  # fmt: skip
        cur.executemany(f"INSERT INTO users ({cols}) VALUES ({ph})", rows)
    raw.commit()
    raw.close()


def _campaign(store: str, users: int, tmp: Path, port: int, connections: int, send: bool = True) -> None:
    url = _database(store, tmp)
    try:
        c = bootstrap(Settings(database_url=url, public_url="https://hub.test"))
        with c.uow() as uow:
            ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=NOW)
        t = time.perf_counter()
        _users(c, ws.id, users)
        print(f"  fixture: {users:,} users inserted in {time.perf_counter() - t:.1f} s")
        flt = {
            "type": "custom_attribute",
            "attribute": "plan",
            "data_type": "string",
            "op": "equals",
            "value": "gold",
        }
        with c.uow() as uow:
            segment = segments.create_segment(
                uow=uow, workspace_id=ws.id, draft=segments.SegmentDraft(name="Gold", filter=flt), now=NOW
            )
        times = []
        for _ in range(3):
            with c.uow(readonly=True) as uow:
                t = time.perf_counter()
                _, members = segments.evaluate_segment(
                    uow=uow,
                    indexes=c.segments,
                    membership=c.membership,
                    workspace_id=ws.id,
                    segment_id=segment.id,
                    now=time.time(),
                )
                times.append(time.perf_counter() - t)
        print(
            f"  audience: {len(members):,} users, first {times[0] * 1000:.0f} ms, "
            f"warm {times[-1] * 1000:.0f} ms"
        )
        if not send:
            c.close()
            return
        body = {"name": "Bench", "channel": "email", "email": EMAIL, "delivery": {"type": "now"},
                "audience": {"segment_ids": [segment.id]}}  # fmt: skip
        with c.uow() as uow:
            program = messaging.create_program(
                uow=uow, workspace_id=ws.id, kind="campaign", raw=body, now=NOW
            )
        with c.uow() as uow:
            messaging.launch_program(uow=uow, workspace_id=ws.id, program_id=program.id, now=NOW)
        pool = SmtpPool(SmtpConfig(port=port, connections=connections))
        runtime = messaging_runtime(c, email=pool, webhook=MemoryWebhookTransport())
        t, cpu = time.perf_counter(), time.process_time()
        runtime.worker.round()
        elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
        with c.uow(readonly=True) as uow:
            stats = messaging.program_stats(uow=uow, workspace_id=ws.id, program_id=program.id)
        runtime.channels.email.close()
        rate = stats["delivered"] / elapsed
        # baseline: the same messages, pre-rendered, over as many SMTP connections, bare smtplib loops
        tracker = Tracker("https://hub.test", b"k")
        sample = [build_email(sender=EMAIL["from"], to=f"u{n}@example.com", subject="Hi", html=EMAIL["body"],
                              text=None, reply_to=None, headers={}, send_row_id=n, tracker=tracker,
                              list_unsubscribe=True, message_id_domain="shop.test")
                  for n in range(min(users, 20000))]  # fmt: skip
        parts = [sample[i::connections] for i in range(connections)]

        def bare(part: list[Any]) -> None:
            conn = smtplib.SMTP("127.0.0.1", port)
            for m in part:
                conn.sendmail(m.sender, [m.to], m.data)
            conn.quit()

        threads = [threading.Thread(target=bare, args=(part,)) for part in parts]
        t = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        base = len(sample) / (time.perf_counter() - t)
        print(
            f"  campaign: {stats['delivered']:,} e-mails delivered in {elapsed:.1f} s = {rate:,.0f}/s "
            f"(includes audience), {connections} SMTP connections; bare smtplib loops on as many "
            f"{base:,.0f}/s; ratio {rate / base:.2f}; cohorthub used {cpu / elapsed:.0%} of a core "
            f"({cpu / max(1, stats['delivered']) * 1e6:.0f} µs CPU per e-mail)"
        )
        c.close()
    finally:
        segments_bench._drop(url)


def _reaction(store: str, count: int, tmp: Path) -> None:
    url = _database(store, tmp)
    log = tmp / f"sink-{uuid.uuid4().hex[:6]}.log"
    sink, port = _sink_process(log)
    try:
        c = bootstrap(Settings(database_url=url, public_url="https://hub.test"))
        with c.uow() as uow:
            ws, _ = workspaces.create_workspace(uow=uow, name="bench", now=NOW)
        with c.uow() as uow:
            pkey = partners.issue_partner_key(uow=uow, partner="heap", now=NOW)
        with c.uow() as uow:
            secret = partners.enable_partner(
                uow=uow, workspace_id=ws.id, partner="heap", now=NOW
            ).data_import_key
        _users(c, ws.id, count)
        auth = {"partner_api_key": pkey, "client_secret": secret}
        canvas = {"name": "React", "entry": {"type": "cohort", "partner": "heap", "cohort_id": "left"},
                  "steps": [{"id": "m", "type": "message", "channel": "email", "email": EMAIL}]}  # fmt: skip
        with LiveServer(c) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            cohort = {**auth, "cohort_id": "left", "name": "Left", "created_at": "2024-01-01T00:00:00Z"}
            named = http.post("/partners/heap/cohorts", json=cohort)
            assert named.status_code == 201, named.text
            with c.uow() as uow:
                program = messaging.create_program(
                    uow=uow, workspace_id=ws.id, kind="canvas", raw=canvas, now=NOW
                )
            with c.uow() as uow:
                messaging.launch_program(uow=uow, workspace_id=ws.id, program_id=program.id, now=NOW)
            stop, worker = start_messaging(
                c, email=SmtpPool(SmtpConfig(port=port)), webhook=MemoryWebhookTransport()
            )
            acked: dict[bytes, float] = {}
            for start in range(0, count, 50):
                ids = [f"u{n}" for n in range(start, min(start + 50, count))]
                answer = http.post(
                    "/partners/heap/cohorts/users",
                    json={**auth, "cohort_id": "left", "cohort_changes": [{"user_ids": ids}]},
                )
                assert answer.status_code == 201, answer.text
                done = time.time()
                acked.update({f"{i}@example.com".encode(): done for i in ids})
                time.sleep(0.02)
            deadline = time.time() + 120
            while _received(log) < count and time.time() < deadline:
                time.sleep(0.05)
            stop.set()
            worker.join(timeout=30)
        arrivals = [line.split(b" ") for line in log.read_bytes().splitlines()]
        delays = sorted(float(at) - acked[rcpt] for at, rcpt in arrivals if rcpt in acked)
        p50 = statistics.median(delays)
        p99 = delays[int(len(delays) * 0.99) - 1]
        print(
            f"  reaction: {len(delays):,}/{count:,} e-mails; import 2xx → e-mail at the SMTP server: "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
        )
        c.close()
    finally:
        sink.terminate()
        segments_bench._drop(url)


def _received(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


def main() -> None:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--users", type=int, default=100_000, help="segment size of the campaign (0: no campaign run)"
    )
    parser.add_argument(
        "--reaction", type=int, default=1000, help="users imported for the reaction time (0: none)"
    )
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument(
        "--connections", type=int, default=4, help="SMTP connections (ours and the baseline's)"
    )
    parser.add_argument(
        "--audience-only", action="store_true", help="time the audience of --users, send nothing"
    )
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sink-log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink, args.sink_log)
        return
    proc, port = _sink_process()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for store in args.stores.split(","):
                print(f"{store}:")
                if args.users:
                    _campaign(store, args.users, Path(tmp), port, args.connections, not args.audience_only)
                if args.reaction:
                    _reaction(store, args.reaction, Path(tmp))
    finally:
        proc.terminate()


if __name__ == "__main__":
    main()
