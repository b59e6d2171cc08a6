"""Pure bounce rules: signed return paths and reading delivery status notifications (RFC 3464)."""

from __future__ import annotations

from cohorthub.messaging.bounces import Report, parse_dsn
from cohorthub.messaging.tracking import Tracker

TRACKER = Tracker(base_url="https://hub.test", secret=b"k")

DSN = (
    b"From: MAILER-DAEMON@mx.example.com\r\n"
    b"To: news+cb7-x@shop.test\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n'
    b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
    b"Final-Recipient: rfc822; Ana@Example.com\r\nAction: failed\r\nStatus: 5.1.1 (unknown user)\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1\r\n  user unknown\r\n\r\n"
    b"Final-Recipient: rfc822; bob@example.com\r\nAction: delayed\r\nStatus: 4.4.7\r\n\r\n"
    b"--b--\r\n"
)


def test_a_return_path_names_its_message_and_cannot_be_forged() -> None:
    path = TRACKER.return_path("news@shop.test", 42)
    assert path.startswith("news+cb42-") and path.endswith("@shop.test")
    assert TRACKER.bounced_row(path) == 42
    assert TRACKER.bounced_row(path.upper()) == 42  # mail systems may change the case of a local part
    assert TRACKER.bounced_row(path.replace("cb42", "cb43")) is None  # another message, same signature
    assert TRACKER.bounced_row(path.replace("@shop.test", "@evil.test")) is None
    assert Tracker(base_url="https://hub.test", secret=b"other").bounced_row(path) is None
    assert TRACKER.bounced_row("news@shop.test") is None
    assert TRACKER.return_path("no-at-sign", 1) == "no-at-sign"


def test_a_dsn_gives_each_recipients_action_status_and_diagnostic() -> None:
    reports = parse_dsn(DSN)
    assert reports == [
        Report("failed", "5.1.1", "Ana@Example.com", "550 5.1.1 user unknown"),
        Report("delayed", "4.4.7", "bob@example.com", None),
    ]
    assert [r.kind for r in reports] == ["Bounce", "Deferral"]
    assert reports[1].reason == "4.4.7"
    assert Report("failed", "4.2.2", None, None).kind == "SoftBounce"
    assert Report("delivered", "2.0.0", None, None).kind is None


def test_what_is_not_a_dsn_gives_no_report() -> None:
    assert parse_dsn(b"Subject: hi\r\n\r\nhello\r\n") == []
    assert parse_dsn(b"") == []
    assert parse_dsn(b"\x00\xff" * 100) == []
    assert parse_dsn(DSN.replace(b"message/delivery-status", b"text/plain")) == []


def test_a_diagnostic_with_nul_or_undecodable_bytes_is_kept_as_storable_text() -> None:
    raw = DSN.replace(b"550 5.1.1\r\n  user unknown", b"550 \x00\xff\xfe bad")
    [first, _] = parse_dsn(raw)
    assert first.diagnostic is not None and "\x00" not in first.diagnostic
    first.diagnostic.encode("utf-8")  # no lone surrogate left
    assert first.diagnostic.startswith("550 ")
