"""The SMTP transport: one connection reused across messages (plain, STARTTLS or TLS; optional auth).

With a server that offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go out in one write and the
message follows the 354: two round trips per message instead of four.

A refused recipient or message is a bounce (5xx) or a soft bounce (4xx). A dropped connection or
a timeout before the server's answer to the message means the server did not take it (RFC 5321:
a message is the server's only once it answers 250 to the end of data), so the message is retried
once on a new connection, then recorded as failed.

The timeout bounds each exchange as a whole (the connection's greeting and set-up, each message, the
QUIT), not only each read: past it, a watchdog shuts the socket down, so a server that answers a line
at a time, never idle for a whole timeout, looks gone rather than holding the sending thread for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from cohorthub.config import Secret
from cohorthub.messaging.ports import Outcome, OutgoingEmail


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to reach the SMTP server."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password: Secret | None = None
    timeout: float = 30.0
    connections: int = 1

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        """`smtp://[user:pass@]host[:port][?connections=N]`, `smtp+starttls://…` or `smtps://…` (TLS)."""
        parts = urlsplit(url)
        security = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "tls"}.get(parts.scheme)
        if security is None or not parts.hostname:
            raise ValueError(f"not an SMTP URL (smtp://, smtp+starttls:// or smtps://): {url}")
        default_port = 465 if security == "tls" else (587 if security == "starttls" else 25)
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=Secret(unquote(parts.password)) if parts.password else None,
            timeout=timeout,
            connections=max(1, int(parse_qs(parts.query).get("connections", ["1"])[0])),
        )


_DOTS = re.compile(rb"(?m)^\.")


class _Watchdog:
    """Ends an exchange with the server that outlasts its deadline by shutting the connection's socket down
    (a blocked read then returns: the server looks gone). One thread per transport, started on first use,
    checking at the deadline or once a timeout while idle; arming it costs a lock, not a thread."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._lock = threading.Condition()
        self._conn: smtplib.SMTP | None = None
        self._at = math.inf
        self._thread: threading.Thread | None = None  # the watching thread; None once closed

    def arm(self, conn: smtplib.SMTP) -> None:
        """Give `conn` one timeout from now for what it does next."""
        with self._lock:
            self._conn, self._at = conn, time.monotonic() + self._timeout
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="smtp-watchdog", daemon=True)
                self._thread.start()

    def disarm(self) -> None:
        """Nothing is being waited for (an idle connection may stay open)."""
        with self._lock:
            self._conn, self._at = None, math.inf

    def close(self) -> None:
        """Stop the thread (the next `arm` starts another)."""
        with self._lock:
            self._thread, self._conn, self._at = None, None, math.inf
            self._lock.notify_all()

    def _watch(self) -> None:
        with self._lock:
            while self._thread is threading.current_thread():
                left = self._at - time.monotonic()
                if left > 0 or self._conn is None:
                    self._lock.wait(min(left, self._timeout))
                    continue
                sock = getattr(self._conn, "sock", None)
                self._conn, self._at = None, math.inf
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)


class SmtpTransport:
    """Sends e-mails over one reused SMTP connection, for one thread at a time (a test send from the API or
    the dashboard shares the worker's connections: it waits for the part of a batch on the wire)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        self._conn: smtplib.SMTP | None = None
        self._pipelining = False
        self._watchdog = _Watchdog(config.timeout)
        self._lock = threading.Lock()
        # built once: loading the CA certificates took ~22 ms, twice per message while the server was down
        self._tls = ssl.create_default_context() if config.security != "none" else None

    def _connect(self) -> smtplib.SMTP:
        c = self._config
        conn: smtplib.SMTP
        if c.security == "tls":
            conn = smtplib.SMTP_SSL(timeout=c.timeout, context=self._tls)
        else:
            conn = smtplib.SMTP(timeout=c.timeout)
        self._watchdog.arm(conn)  # the greeting and the whole set-up
        try:
            conn.connect(c.host, c.port)
        except BaseException:
            conn.close()
            raise
        if c.security == "starttls":
            conn.starttls(context=self._tls)
        if c.username and c.password is not None:
            conn.login(c.username, c.password.reveal())
        conn.ehlo_or_helo_if_needed()
        self._pipelining = conn.has_extn("pipelining")
        return conn

    def send(self, messages: Sequence[OutgoingEmail]) -> list[Outcome]:
        """Hand each message to the server; one outcome per message, in order."""
        with self._lock:
            try:
                return self._send(messages)
            finally:
                self._watchdog.disarm()

    def _send(self, messages: Sequence[OutgoingEmail]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        lost = False  # the next message's content was on the wire when the connection went
        while len(outcomes) < len(messages):
            message = messages[len(outcomes)]
            if lost:
                again = self._attempt(message)
                outcomes.append(
                    Outcome("failed", again, retries=1)
                    if isinstance(again, str)
                    else dataclasses.replace(again, retries=1)
                )
                lost = False
            elif self._conn is not None and self._pipelining:
                done, lost = self._chain(messages[len(outcomes) :])
                outcomes.extend(done)
            else:
                outcomes.append(self._send_one(message))
        return outcomes

    def _chain(self, messages: Sequence[OutgoingEmail]) -> tuple[list[Outcome], bool]:
        """Messages back to back, one round trip each (RFC 2920): a message's content, its end of data
        and the next message's MAIL, RCPT and DATA go out in one write.

        Returns the outcomes of the first messages and whether the connection went while the next
        one's content was on the wire (then it is sent again once); stops at a lost connection or 421.
        """
        conn = self._conn
        assert conn is not None
        done: list[Outcome] = []
        tail = b""  # what goes before the next commands: a content and its end, an empty end, or RSET
        in_flight = False
        try:
            for m in messages:
                self._watchdog.arm(conn)  # this message's round trip (and the answer to the one before)
                conn.send(
                    tail + b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (m.sender.encode(), m.to.encode())
                )
                if tail and not self._answered(conn, in_flight, done):
                    return done, False
                tail, in_flight = b"", False
                mail, rcpt, data = conn.getreply(), conn.getreply(), conn.getreply()
                refusal = next(
                    (r for r, ok in ((mail, 250), (rcpt, 250)) if r[0] != ok and r[0] != 251), None
                )
                if data[0] == 354 and refusal is None:
                    tail, in_flight = _content(m.data), True
                    continue
                code, text = refusal or data
                done.append(_refused(code, text))
                if code == 421:
                    self._drop()
                    return done, False
                # a server that took DATA without a recipient gets an empty message; otherwise RSET
                tail = b".\r\n" if data[0] == 354 else b"RSET\r\n"
            if tail:
                self._watchdog.arm(conn)
                conn.send(tail)
                if not self._answered(conn, in_flight, done):
                    return done, False
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()
            return done, in_flight
        return done, False

    def _answered(self, conn: smtplib.SMTP, content: bool, done: list[Outcome]) -> bool:
        """Read the answer to a tail (a message's end of data: its outcome; or a reset); False on 421."""
        code, text = conn.getreply()
        if content:
            done.append(Outcome("delivered") if code == 250 else _refused(code, text))
        if code == 421:
            self._drop()
            return False
        return True

    def _send_one(self, message: OutgoingEmail) -> Outcome:
        """One message; sent again once on a new connection when the first one was lost (`retries` 1)."""
        first = self._attempt(message)
        if not isinstance(first, str):
            return first
        second = self._attempt(message)
        if isinstance(second, str):
            return Outcome("failed", second, retries=1)
        return dataclasses.replace(second, retries=1)

    def _attempt(self, message: OutgoingEmail) -> Outcome | str:
        """The outcome, or why the connection was lost before the server answered (worth one retry)."""
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._watchdog.arm(self._conn)
            if self._pipelining:
                return self._pipelined(self._conn, message)
            refused = self._conn.sendmail(message.sender, [message.to], message.data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return _refused(code, text)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            return _refused(exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            self._drop()
            return f"{type(exc).__name__}: {exc}"
        except smtplib.SMTPException as exc:
            self._drop()
            return Outcome("failed", f"{type(exc).__name__}: {exc}")
        if refused:
            code, text = next(iter(refused.values()))
            return _refused(code, text)
        return Outcome("delivered")

    def _pipelined(self, conn: smtplib.SMTP, message: OutgoingEmail) -> Outcome:
        """MAIL, RCPT and DATA in one write; the message after the 354 (RFC 2920)."""
        conn.send(f"MAIL FROM:<{message.sender}>\r\nRCPT TO:<{message.to}>\r\nDATA\r\n".encode())
        mail, rcpt, data = conn.getreply(), conn.getreply(), conn.getreply()
        refusal = next((r for r, ok in ((mail, 250), (rcpt, 250)) if r[0] != ok and r[0] != 251), None)
        if data[0] == 354:
            if refusal is not None:  # a server that takes DATA without a recipient: end it empty
                conn.send(b".\r\n")
                conn.getreply()
                return self._refusal(*refusal)
            conn.send(_content(message.data))
            code, text = conn.getreply()
            return Outcome("delivered") if code == 250 else self._refusal(code, text)
        return self._refusal(*(refusal or data), reset=True)

    def _refusal(self, code: int, text: bytes, *, reset: bool = False) -> Outcome:
        """A refused message; the connection is reset for the next one (or dropped on 421)."""
        if code == 421:
            self._drop()
        elif reset and self._conn is not None:
            try:
                self._conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        return _refused(code, text)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        """Say QUIT and close the connection."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                self._watchdog.arm(conn)
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()
            self._watchdog.close()


def _content(data: bytes) -> bytes:
    """A message as sent after the 354: dot-stuffed, ending with the end-of-data line."""
    return _DOTS.sub(b"..", data) + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def _refused(code: int, text: bytes | str) -> Outcome:
    detail = f"{code} {text.decode(errors='replace') if isinstance(text, bytes) else text}"
    return Outcome("soft_bounced" if 400 <= code < 500 else "bounced", detail, code)


class SmtpPool:
    """Sends a batch over `config.connections` SMTP connections at once (each reused), keeping the order."""

    def __init__(self, config: SmtpConfig) -> None:
        self._transports = [SmtpTransport(config) for _ in range(max(1, config.connections))]
        self._pool = ThreadPoolExecutor(len(self._transports), thread_name_prefix="smtp")

    def send(self, messages: Sequence[OutgoingEmail]) -> list[Outcome]:
        """One outcome per message, in order; the batch is split in contiguous parts, one per connection."""
        n = len(self._transports)
        if n == 1 or len(messages) < 2:
            return self._transports[0].send(messages)
        size = -(-len(messages) // n)
        parts = [messages[i : i + size] for i in range(0, len(messages), size)]
        results = self._pool.map(
            lambda pair: pair[0].send(pair[1]), zip(self._transports, parts, strict=False)
        )
        return [outcome for part in results for outcome in part]

    def close(self) -> None:
        """Close every connection."""
        for transport in self._transports:
            transport.close()
        self._pool.shutdown(wait=False)
