"""One message to one user: the text it renders to, the e-mail or request it becomes, its outcome's events.

Pure: `dispatch.Sender` does the I/O (ledger, transports) around these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cohorthub.messaging.context import liquid_values
from cohorthub.messaging.email import build_email, envelope_sender, sender_domain
from cohorthub.messaging.events import Source, message_event, user_of
from cohorthub.messaging.liquid import compile_template
from cohorthub.messaging.model import EmailContent, WebhookContent
from cohorthub.messaging.ports import Outcome, OutgoingEmail, OutgoingWebhook, SendKey, UserRow
from cohorthub.messaging.tracking import Tracker

#: Rendered in place of the unsubscribe link, then replaced by the signed link of the message's ledger row.
UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/__cohorthub__"
_LINK_NAMES = ("set_user_to_unsubscribed_url", "unsubscribe_url")


@dataclass(frozen=True, slots=True)
class Item:
    """One message to one user."""

    source: Source
    user: UserRow
    dispatch_id: str
    message: EmailContent | WebhookContent
    send_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    list_unsubscribe: bool = True

    @property
    def key(self) -> SendKey:
        """Its ledger key."""
        return SendKey(self.source.program_id, self.source.step_id, self.user.num, self.dispatch_id)


def render_fields(
    message: EmailContent | WebhookContent, values: dict[str, Any], *, prefixed: bool = False
) -> dict[str, str]:
    """An e-mail's `subject`, `body` and `plaintext_body` (when it has one), or a webhook's `url` and
    `body`, rendered with `values`; a failure names the field (`email.subject` when `prefixed`)."""
    kind = "email" if isinstance(message, EmailContent) else "webhook"

    def render(template: str, field: str) -> str:
        return compile_template(template, path=f"{kind}.{field}" if prefixed else field).render(values)

    if isinstance(message, EmailContent):
        parts = {"subject": render(message.subject, "subject"), "body": render(message.body, "body")}
        if message.plaintext_body:
            parts["plaintext_body"] = render(message.plaintext_body, "plaintext_body")
        return parts
    return {"url": render(message.url, "url"), "body": render(message.body, "body")}


def render_item(item: Item) -> dict[str, str]:
    """The message's text fields for this user (`MessageAborted`/`RenderFailed` when it cannot go)."""
    links = dict.fromkeys(_LINK_NAMES, UNSUBSCRIBE_PLACEHOLDER)
    values = liquid_values(item.user, **item.values, links=links)
    m = item.message
    parts = render_fields(m, values)
    for name, value in m.headers.items():
        parts[f"header:{name}"] = compile_template(value, path=name).render(values)
    return parts


def _headers(parts: dict[str, str]) -> dict[str, str]:
    """The rendered `header:<name>` parts by name."""
    return {k[7:]: v for k, v in parts.items() if k.startswith("header:")}


def channel_of(item: Item) -> str:
    """`email` or `webhook`."""
    return "email" if isinstance(item.message, EmailContent) else "webhook"


def email_of(item: Item, parts: dict[str, str], row_id: int, tracker: Tracker) -> OutgoingEmail:
    """The e-mail a rendered item becomes: signed links of ledger row `row_id`, unsubscribe, return path."""
    m = item.message
    assert isinstance(m, EmailContent)
    unsubscribe = tracker.unsubscribe_url(row_id)
    body = parts["body"].replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe)
    text = parts.get("plaintext_body")
    text = text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe) if text is not None else None
    headers = _headers(parts)
    return build_email(
        sender=m.sender,
        to=item.user.email or "",
        subject=parts["subject"],
        html=body,
        text=text,
        reply_to=m.reply_to,
        headers=headers,
        send_row_id=row_id,
        tracker=tracker,
        list_unsubscribe=item.list_unsubscribe,
        message_id_domain=sender_domain(m.sender),
        unsubscribe_url=unsubscribe,
        return_path=tracker.return_path(envelope_sender(m.sender), row_id) if row_id else None,
    )


def webhook_of(m: WebhookContent, parts: dict[str, str]) -> OutgoingWebhook:
    """The request a rendered webhook becomes (a Content-Type inferred from the body when not given)."""
    headers = _headers(parts)
    body = parts["body"]
    if body and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json" if body.lstrip()[:1] in ("{", "[") else "text/plain"
    return OutgoingWebhook(url=parts["url"], method=m.method, headers=headers, body=body.encode())


def outcome_events(item: Item, outcome: Outcome, now: float) -> list[Any]:
    """The events of a message's outcome (Retry events first, for each time it was sent again)."""
    user = user_of(item.user)
    base = {"dispatch_id": item.dispatch_id, "send_id": item.send_id}
    src = item.source
    if isinstance(item.message, EmailContent):
        base["email_address"] = item.user.email
        domain = sender_domain(envelope_sender(item.message.sender))
        retried = [
            message_event("users.messages.email.Retry", src, user, time=now, retry_type="smtp_connection",
                          retry_log="the connection was lost before the server answered; sent again", **base)
        ] if outcome.retries else []  # fmt: skip
        if outcome.state == "delivered":
            return [
                *retried,
                message_event(
                    "users.messages.email.Delivery",
                    src,
                    user,
                    time=now,
                    esp="smtp",
                    from_domain=domain,
                    **base,
                ),
            ]
        kind = "SoftBounce" if outcome.state == "soft_bounced" else "Bounce"
        return [
            *retried,
            message_event(
                f"users.messages.email.{kind}",
                src,
                user,
                time=now,
                bounce_reason=outcome.detail,
                esp="smtp",
                from_domain=domain,
                **base,
            ),
        ]
    events = [
        message_event(
            "users.messages.webhook.Retry",
            src,
            user,
            time=now,
            retry_type="http",
            retry_log=f"attempt {n + 1} failed",
            **base,
        )
        for n in range(outcome.retries)
    ]
    if outcome.state != "delivered":
        parts = urlsplit(item.message.url)
        events.append(
            message_event(
                "users.messages.webhook.Failure",
                src,
                user,
                time=now,
                endpoint_url=item.message.url,
                host=parts.hostname,
                url_path=parts.path,
                http_status_code=outcome.status,
                is_terminal=True,
                raw_response=(outcome.detail or "")[:1000],
                retry_count=outcome.retries,
                webhook_failure_source="http" if outcome.status else "network",
                **base,
            )
        )
    return events
