"""Signed tracking links: open pixel, click redirect and unsubscribe (pure; the secret is passed in).

A link names the ledger row and carries an HMAC-SHA256 over the action, the row and (for clicks)
the target URL, so that ids cannot be forged and a click cannot be turned into an open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

from cohorthub.keys import same_secret


@lru_cache(maxsize=8)
def _keyed(secret: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 keyed with `secret`, copied for each signature (cheaper than keying anew)."""
    return hmac.new(secret, digestmod=hashlib.sha256)


@lru_cache(maxsize=1024)
def _quoted(url: str) -> str:
    return quote(url, safe="")


#: The tag a return path carries: `+cb{ledger id}-{16 hex digits of signature}` before the `@`.
_BOUNCE_TAG = re.compile(r"\+cb([0-9]{1,18})-([0-9a-f]{16})@", re.IGNORECASE)
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'\s>]+)\2""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Tracker:
    """Makes and checks tracking links under `base_url` (the server's public URL)."""

    base_url: str
    secret: bytes

    def sign(self, action: str, send_row_id: int, url: str = "") -> str:
        """The signature of one link."""
        mac = _keyed(self.secret).copy()
        mac.update(f"{action}:{send_row_id}:{url}".encode())
        digest = mac.digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def verify(self, action: str, send_row_id: int, signature: str, url: str = "") -> bool:
        """True when the signature matches."""
        return same_secret(signature, self.sign(action, send_row_id, url))

    def return_path(self, address: str, send_row_id: int) -> str:
        """The envelope sender (VERP) of one message: `local+cb{row}-{signature}@domain`, so that a bounce
        names the message it is about, and cannot be forged for another message or address. Lower-case
        hex, the address signed in lower case: mail systems may change the case of a local part."""
        local, at, domain = address.rpartition("@")
        if not at:
            return address
        mac = _keyed(self.secret).copy()
        mac.update(f"b:{send_row_id}:{address.lower()}".encode())
        return f"{local}+cb{send_row_id}-{mac.hexdigest()[:16]}@{domain}"

    def bounced_row(self, address: str) -> int | None:
        """The ledger row a bounce sent to `address` (a return path of ours) is about; None when the
        address carries no tag or its signature does not match."""
        found = _BOUNCE_TAG.search(address)
        if found is None:
            return None
        row = int(found.group(1))
        local, _, domain = address[: found.start()], "@", address[found.end() :]
        expected = self.return_path(f"{local}@{domain}", row)
        return row if same_secret(address.strip().lower(), expected.lower()) else None

    def open_url(self, send_row_id: int) -> str:
        """The open pixel's URL."""
        return f"{self.base_url}/t/o/{send_row_id}/{self.sign('o', send_row_id)}.gif"

    def click_url(self, send_row_id: int, url: str) -> str:
        """The click redirect for `url`."""
        return f"{self.base_url}/t/c/{send_row_id}/{self.sign('c', send_row_id, url)}?u={_quoted(url)}"

    def unsubscribe_url(self, send_row_id: int) -> str:
        """The unsubscribe link (GET shows a confirmation, POST unsubscribes: RFC 8058 one-click)."""
        return f"{self.base_url}/t/u/{send_row_id}/{self.sign('u', send_row_id)}"

    def rewrite_links(self, html: str, send_row_id: int) -> str:
        """Route every `<a href="http…">` through the click redirect (our own links stay as they are)."""
        own = self.base_url + "/t/"

        def swap(m: re.Match[str]) -> str:
            url = m.group(3)
            if url.startswith(own):
                return m.group(0)
            tracked = self.click_url(send_row_id, url.replace("&amp;", "&"))
            return f"{m.group(1)}{m.group(2)}{tracked}{m.group(2)}"

        return _HREF.sub(swap, html)
