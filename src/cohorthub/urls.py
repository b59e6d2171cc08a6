"""The one rule for an http(s) URL the product will send requests to (Currents connectors, webhooks).

A URL is checked where it is given, so that a connector or message that is stored can be sent:
an HTTP client refuses a host with a control character, a port that is not a number, or a name
no resolver can be asked for (an empty or 64-character label), and it does so only at send
time, long after the 2xx that stored it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

from cohorthub.text import storable_problem

_UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")  # what an HTTP request line and Host header cannot carry


def http_url_problem(url: str) -> str | None:
    """Why `url` cannot be the target of an HTTP request (a sentence fragment), or None."""
    if problem := storable_problem(url):
        return problem
    if _UNSENDABLE.search(url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number from 0 to 65535 raises here
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if port == 0:
        return "must not use port 0"
    return _host_problem(parts)


def _host_problem(parts: SplitResult) -> str | None:
    host = parts.hostname or ""
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return "has an invalid IPv6 address"
        return None
    try:
        host.encode("idna")  # what the resolver is asked for: every label 1 to 63 characters
    except UnicodeError:
        return "has an invalid host name"
    return None
