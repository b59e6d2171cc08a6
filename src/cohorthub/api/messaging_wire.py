"""Wire types of the messaging API (for OpenAPI; bodies are validated by the messaging model)."""

from __future__ import annotations

from typing import Any

import msgspec


class Recipient(msgspec.Struct, omit_defaults=True):
    """One recipient of a trigger call: `external_user_id` or `user_alias`, with its own properties."""

    external_user_id: str | None = None
    user_alias: dict[str, str] | None = None
    trigger_properties: dict[str, Any] | None = None
    canvas_entry_properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    send_to_existing_only: bool = True


class CampaignTrigger(msgspec.Struct, omit_defaults=True):
    """`POST /campaigns/trigger/send`."""

    campaign_id: str
    send_id: str | None = None
    trigger_properties: dict[str, Any] | None = None
    broadcast: bool = False
    recipients: list[Recipient] | None = None


class CanvasTrigger(msgspec.Struct, omit_defaults=True):
    """`POST /canvas/trigger/send`."""

    canvas_id: str
    canvas_entry_properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    broadcast: bool = False
    recipients: list[Recipient] | None = None


class MessagesSend(msgspec.Struct, omit_defaults=True):
    """`POST /messages/send`: `messages.email` (from, subject, body…) or `messages.webhook`."""

    messages: dict[str, Any]
    broadcast: bool = False
    external_user_ids: list[str] | None = None
    user_aliases: list[dict[str, str]] | None = None
    segment_id: str | None = None
    send_id: str | None = None
    recipient_subscription_state: str = "subscribed"


class SendIdCreate(msgspec.Struct, omit_defaults=True):
    """`POST /sends/id/create`."""

    campaign_id: str
    send_id: str | None = None


class Dispatched(msgspec.Struct, omit_defaults=True):
    """A send's answer: 201 means the dispatch is stored and will be sent."""

    dispatch_id: str
    message: str = "success"
    send_id: str | None = None
    notice: str | None = None
    errors: list[str] | None = None


class SendIdCreated(msgspec.Struct):
    """`POST /sends/id/create` answer."""

    send_id: str
    message: str = "success"


class Program(msgspec.Struct):
    """A campaign or Canvas: its lifecycle and its definition (docs/messaging.md)."""

    id: str
    kind: str
    name: str
    status: str
    created_at: str
    updated_at: str
    first_sent_at: str | None
    last_sent_at: str | None
    definition: dict[str, Any]


class ProgramList(msgspec.Struct):
    """Campaigns or Canvases of the workspace."""

    items: list[Program]
    message: str = "success"


class Preview(msgspec.Struct):
    """Audience size now, reachable users, a sample, and the message rendered for one user."""

    size: int
    reachable: int
    sample: list[str]
    rendered: dict[str, str] | None
    render_error: str | None
    message: str = "success"


class TestSend(msgspec.Struct):
    """`POST …/test-send`: where to send, and (optionally) whose attributes to render with."""

    address: str
    external_id: str | None = None
