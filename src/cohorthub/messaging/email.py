"""Building an e-mail: multipart text + HTML, tracking, unsubscribe headers (pure)."""

from __future__ import annotations

import html as html_lib
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr

from cohorthub.messaging.ports import OutgoingEmail
from cohorthub.messaging.tracking import Tracker

_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_BLANKS = re.compile(r"[ \t]+")
_BREAKS = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr)\b[^>]*>", re.IGNORECASE)


def text_from_html(body: str) -> str:
    """A plain-text part from HTML: tags dropped, entities decoded, blank runs folded."""
    text = _TAGS.sub("", _BREAKS.sub("\n", body))
    lines = [_BLANKS.sub(" ", line).strip() for line in html_lib.unescape(text).splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


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
) -> OutgoingEmail:
    """A multipart/alternative message with tracked links, an open pixel and RFC 8058 headers."""
    body = tracker.rewrite_links(html, send_row_id)
    pixel = f'<img src="{tracker.open_url(send_row_id)}" width="1" height="1" alt="" style="display:none">'
    body = body.replace("</body>", pixel + "</body>") if "</body>" in body else body + pixel
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject.replace("\r", " ").replace("\n", " ")
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<m{send_row_id}@{message_id_domain}>"
    if reply_to and reply_to != "NO_REPLY_TO":
        msg["Reply-To"] = reply_to
    if list_unsubscribe:
        msg["List-Unsubscribe"] = f"<{tracker.unsubscribe_url(send_row_id)}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in headers.items():
        if name.lower() not in {"from", "to", "subject", "date", "message-id"}:
            msg[name] = value.replace("\r", " ").replace("\n", " ")
    msg.set_content(text if text is not None else text_from_html(html))
    msg.add_alternative(body, subtype="html")
    return OutgoingEmail(sender=envelope_sender(sender), to=to, data=msg.as_bytes())


def envelope_sender(sender: str) -> str:
    """The bare address of a `Name <address>` sender."""
    return parseaddr(sender)[1] or sender


def sender_domain(sender: str) -> str:
    """The domain part of the sender's address."""
    address = envelope_sender(sender)
    try:
        return Address(addr_spec=address).domain or "localhost"
    except (ValueError, IndexError):
        return address.rpartition("@")[2] or "localhost"
