"""Message events in the Currents Custom HTTP shape, each with its sample's field set (pure).

A campaign message carries `campaign_id`, `campaign_name`, `message_variation_id`; a Canvas step's
carries `canvas_id`, `canvas_name`, `canvas_variation_id`, `canvas_step_id`, `canvas_step_name`
and `message_variation_id`; both carry `dispatch_id`, and `send_id` when one was given. Fields we
cannot know (IP pool, ESP, device model…) are left out rather than invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cohorthub.currents.envelope import Envelope, event_user, new_envelope
from cohorthub.messaging.ports import UserRow

#: The fields of campaign and Canvas events, every message event's (either source's ids), and e-mail's.
_CAMPAIGN = ("campaign_id", "campaign_name", "message_variation_id", "message_variation_name")
_CANVAS = (
    "canvas_id",
    "canvas_name",
    "canvas_step_id",
    "canvas_step_name",
    "canvas_variation_id",
    "canvas_variation_name",
)
_MESSAGE = (*_CAMPAIGN, *_CANVAS, "dispatch_id", "send_id")
_EMAIL = (*_MESSAGE, "email_address")
_CONVERSION = ("conversion_behavior", "conversion_behavior_index", "app_id")
#: Each event type's allowed properties (the sample's field set, besides `app_group_id`).
FIELDS: dict[str, tuple[str, ...]] = {
    "users.messages.email.Send": (*_EMAIL, "message_extras"),
    "users.messages.email.Delivery": (*_EMAIL, "esp", "from_domain"),
    "users.messages.email.Bounce": (*_EMAIL, "bounce_reason", "esp", "from_domain", "is_drop"),
    "users.messages.email.SoftBounce": (*_EMAIL, "bounce_reason", "esp", "from_domain"),
    "users.messages.email.Deferral": (
        *_EMAIL,
        "deferral_reason",
        "recipient_domain",
        "attempt_count",
        "esp",
        "from_domain",
    ),
    "users.messages.email.Open": (*_EMAIL, "user_agent", "machine_open", "is_amp"),
    "users.messages.email.Click": (*_EMAIL, "url", "link_id", "link_alias", "user_agent", "is_amp"),
    "users.messages.email.Retry": (*_EMAIL, "retry_type", "retry_log"),
    "users.messages.email.Unsubscribe": _EMAIL,
    "users.messages.email.Abort": (*_EMAIL, "abort_type", "abort_log"),
    "users.messages.webhook.Send": (*_MESSAGE, "message_extras"),
    "users.messages.webhook.Failure": (
        *_MESSAGE,
        "endpoint_url",
        "host",
        "url_path",
        "http_status_code",
        "is_terminal",
        "raw_response",
        "retry_count",
        "webhook_failure_source",
    ),
    "users.messages.webhook.Retry": (*_MESSAGE, "retry_type", "retry_log"),
    "users.messages.webhook.Abort": (*_MESSAGE, "abort_type", "abort_log"),
    "users.campaigns.Conversion": (*_CAMPAIGN, "dispatch_id", "send_id", *_CONVERSION),
    "users.canvas.Entry": (*_CANVAS, "in_control_group"),
    "users.canvas.Conversion": (*_CANVAS, *_CONVERSION),
    "users.canvas.exit.PerformedEvent": _CANVAS,
    "users.canvas.exit.MatchedAudience": _CANVAS,
    "users.canvasstep.Progression": (
        *_CANVAS,
        "canvas_entry_id",
        "next_step_id",
        "progression_type",
        "is_canvas_entry",
        "exit_reason",
    ),
}

_ALLOWED = {name: frozenset(fields) for name, fields in FIELDS.items()}


@dataclass(frozen=True, slots=True)
class Source:
    """Which campaign, or which Canvas and step, a message or event belongs to."""

    workspace_id: str
    campaign_id: str | None = None
    campaign_name: str | None = None
    canvas_id: str | None = None
    canvas_name: str | None = None
    canvas_variation_id: str | None = None
    canvas_step_id: str | None = None
    canvas_step_name: str | None = None
    message_variation_id: str | None = None

    @property
    def program_id(self) -> str:
        """The campaign's or the Canvas's id."""
        return self.campaign_id or self.canvas_id or ""

    @property
    def step_id(self) -> str:
        """The Canvas step's id ("" for a campaign)."""
        return self.canvas_step_id or ""


@lru_cache(maxsize=256)
def _ids(source: Source) -> dict[str, Any]:
    """A source's identifying properties (the same for each of its messages: computed once; read only)."""
    out: dict[str, Any] = {
        "campaign_id": source.campaign_id,
        "campaign_name": source.campaign_name,
        "canvas_id": source.canvas_id,
        "canvas_name": source.canvas_name,
        "canvas_variation_id": source.canvas_variation_id,
        "canvas_variation_name": "Variant 1" if source.canvas_variation_id else None,
        "canvas_step_id": source.canvas_step_id,
        "canvas_step_name": source.canvas_step_name,
        "message_variation_id": source.message_variation_id,
        "message_variation_name": "Variant 1" if source.message_variation_id else None,
    }
    return {k: v for k, v in out.items() if v is not None}


def user_of(user: UserRow) -> dict[str, str]:
    """The event's `user` object."""
    return event_user(braze_id=user.braze_id, external_id=user.external_id, timezone=user.time_zone)


def message_event(
    event_type: str, source: Source, user: dict[str, str], *, time: float, **extra: Any
) -> Envelope:
    """One event of `event_type` with the source's ids and `extra`, limited to the sample's fields."""
    allowed = _ALLOWED[event_type]
    props = {k: v for k, v in _ids(source).items() if k in allowed}
    props.update((k, v) for k, v in extra.items() if v is not None and k in allowed)
    props["app_group_id"] = source.workspace_id
    return new_envelope(event_type, time=time, user=user, properties=props)
