"""Building an e-mail: multipart text + HTML, tracking, unsubscribe headers (pure)."""

from __future__ import annotations

import binascii
import html as html_lib
import itertools
import re
import secrets
import time
from email.header import Header
from email.headerregistry import Address
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from cohorthub.messaging.ports import OutgoingEmail
from cohorthub.messaging.tracking import Tracker

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"[ \t]+")
_RESERVED = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-unsubscribe",
    "list-unsubscribe-post",
}
#: Boundaries and Message-IDs: a random token per process and a serial (no system call per message).
_PROCESS = secrets.token_hex(6)
_SERIAL = itertools.count()
_BREAKS = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr)\b[^>]*>", re.IGNORECASE)


def text_from_html(body: str) -> str:
    """A plain-text part from HTML: tags dropped, entities decoded, blank runs folded."""
    text = _TAGS.sub("", _BREAKS.sub("\n", body))
    lines = [_BLANKS.sub(" ", line).strip() for line in html_lib.unescape(text).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


def _header(value: str) -> str:
    """A header value on one line, RFC 2047-encoded when it is not ASCII."""
    value = value.replace("\r", " ").replace("\n", " ")
    return value if value.isascii() else Header(value, "utf-8").encode()


@lru_cache(maxsize=256)
def _address(value: str) -> str:
    name, address = parseaddr(value)
    return formataddr((name, address), charset="utf-8") if name else address or value


@lru_cache(maxsize=4)
def _date(second: int) -> str:
    """The Date header's value for this second (the same for every message sent within it)."""
    return formatdate(second, usegmt=True)


def _qp(text: str) -> bytes:
    """Quoted-printable UTF-8 with CRLF line ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return b"\r\n".join(binascii.b2a_qp(line.encode("utf-8"), istext=False) for line in lines)


def build_email(
    *,
    sender: str,
    to: str,
    subject: str,
    html: str,
    text: str | None,
    reply_to: str | None,
    headers: dict[str, str],
    send_row_id: int,
    tracker: Tracker,
    list_unsubscribe: bool,
    message_id_domain: str,
    unsubscribe_url: str | None = None,
    return_path: str | None = None,
) -> OutgoingEmail:
    """A multipart/alternative message with tracked links, an open pixel and RFC 8058 headers.

    Written directly as bytes (quoted-printable UTF-8 parts): the standard library's `email`
    package spends milliseconds per message, which would cap a campaign at a few hundred per second.
    `unsubscribe_url`: the row's unsubscribe link when the caller has it already; `return_path`: the
    envelope sender (where bounces go), the sender's address when absent.
    """
    body = tracker.rewrite_links(html, send_row_id)
    pixel = f'<img src="{tracker.open_url(send_row_id)}" width="1" height="1" alt="" style="display:none">'
    body = body.replace("</body>", pixel + "</body>") if "</body>" in body else body + pixel
    unique = f"{_PROCESS}{next(_SERIAL):x}"
    boundary = f"=_cohorthub_{send_row_id}_{unique}"
    lines = [
        f"From: {_address(sender)}",
        f"To: {to}",
        f"Subject: {_header(subject)}",
        f"Date: {_date(int(time.time()))}",
        f"Message-ID: <m{send_row_id}.{unique}@{message_id_domain}>",
        "MIME-Version: 1.0",
    ]
    if reply_to and reply_to != "NO_REPLY_TO":
        lines.append(f"Reply-To: {_address(reply_to)}")
    if list_unsubscribe:
        lines.append(f"List-Unsubscribe: <{unsubscribe_url or tracker.unsubscribe_url(send_row_id)}>")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    for name, value in headers.items():
        clean = "".join(ch for ch in name if 33 <= ord(ch) <= 126 and ch != ":")
        if clean and clean.lower() not in _RESERVED:
            lines.append(f"{clean}: {_header(value)}")
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    part = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    data = b"".join(
        [
            "\r\n".join(lines).encode("ascii", "replace"),
            b"\r\n\r\n",
            f"--{boundary}\r\n{part.format('plain')}".encode(),
            _qp(text if text is not None else text_from_html(html)),
            f"\r\n--{boundary}\r\n{part.format('html')}".encode(),
            _qp(body),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return OutgoingEmail(sender=return_path or envelope_sender(sender), to=to, data=data)


@lru_cache(maxsize=256)
def envelope_sender(sender: str) -> str:
    """The bare address of a `Name <address>` sender."""
    return parseaddr(sender)[1] or sender


@lru_cache(maxsize=256)
def sender_domain(sender: str) -> str:
    """The domain part of the sender's address."""
    address = envelope_sender(sender)
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return address.rpartition("@")[2] or "localhost"
