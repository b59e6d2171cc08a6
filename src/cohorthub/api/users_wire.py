"""Wire types of the `/users/*` endpoints, as `/openapi.json` documents them.

Requests are validated by the identity rules (so a bad object in `/users/track` is a non-fatal
error instead of a failed request); these Structs describe the shapes for clients, with the same
limits (lengths from `identity.model`, no NUL characters, an identifier in every object).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cohorthub.api.openapi import NO_NUL, NOT_BLANK
from cohorthub.identity.model import MAX_ID_LENGTH, STANDARD_FIELDS
from cohorthub.identity.requests import MAX_TRACK_OBJECTS

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)]


def _field(name: str) -> msgspec.Meta:
    return msgspec.Meta(max_length=STANDARD_FIELDS[name], pattern=NO_NUL)


#: Every `/users/track` object names its user by one of these.
_NAMES_A_USER = msgspec.Meta(
    extra_json_schema={
        "anyOf": [
            {"required": [k], "properties": {k: {"not": {"type": "null"}}}}
            for k in ("external_id", "braze_id", "user_alias", "email", "phone", "device_id")
        ]
    }
)


class UserAlias(msgspec.Struct):
    """A user alias: `alias_label` is the key, `alias_name` the value."""

    alias_name: Id
    alias_label: Id


class UserIdentifiers(msgspec.Struct, kw_only=True):
    """One of these names the user (precedence in this order); `device_id` beside `external_id` signs in."""

    external_id: Id | None = None
    braze_id: Id | None = None
    user_alias: UserAlias | None = None
    email: Annotated[str, _field("email")] | None = None
    phone: Annotated[str, _field("phone")] | None = None
    device_id: Id | None = None
    update_existing_only: bool | None = msgspec.field(default=None, name="_update_existing_only")


class AttributesObject(UserIdentifiers, kw_only=True):
    """Standard fields plus any custom attributes (string, number, boolean, time, array, inc/add/remove)."""

    first_name: Annotated[str, _field("first_name")] | None = None
    last_name: Annotated[str, _field("last_name")] | None = None
    gender: Literal["M", "F", "O", "N", "P"] | None = None
    dob: Annotated[str, _field("dob")] | None = None
    country: Annotated[str, _field("country")] | None = None
    home_city: Annotated[str, _field("home_city")] | None = None
    language: Annotated[str, _field("language")] | None = None
    time_zone: Annotated[str, _field("time_zone")] | None = None
    email_subscribe: Literal["opted_in", "subscribed", "unsubscribed"] | None = None


class EventObject(UserIdentifiers, kw_only=True):
    """A custom event."""

    name: str
    time: str
    properties: dict[str, Any] | None = None
    app_id: str | None = None


class PurchaseObject(UserIdentifiers, kw_only=True):
    """A purchase."""

    product_id: str
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)]
    price: float
    time: str
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    properties: dict[str, Any] | None = None
    app_id: str | None = None


Upto75 = msgspec.Meta(max_length=MAX_TRACK_OBJECTS)


class TrackRequest(msgspec.Struct, kw_only=True):
    """`POST /users/track`: up to 75 objects in each array."""

    attributes: Annotated[list[Annotated[AttributesObject, _NAMES_A_USER]], Upto75] | None = None
    events: Annotated[list[Annotated[EventObject, _NAMES_A_USER]], Upto75] | None = None
    purchases: Annotated[list[Annotated[PurchaseObject, _NAMES_A_USER]], Upto75] | None = None


class TrackError(msgspec.Struct):
    """A non-fatal error: the object at `input_array[index]` was skipped."""

    type: str
    input_array: str
    index: int


class TrackResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """`message` is "success"; `errors` lists the skipped objects."""

    message: str
    attributes_processed: int | None = None
    events_processed: int | None = None
    purchases_processed: int | None = None
    errors: list[TrackError] | None = None


Prioritization = list[
    Literal["identified", "unidentified", "most_recently_updated", "least_recently_updated"]
]


class AliasToIdentify(msgspec.Struct):
    """Identify the alias-only profile as `external_id`."""

    external_id: Id
    user_alias: UserAlias


class EmailToIdentify(msgspec.Struct):
    """Identify the email-only profile `prioritization` picks as `external_id`."""

    external_id: Id
    email: str
    prioritization: Prioritization


class PhoneToIdentify(msgspec.Struct):
    """Identify the phone-only profile `prioritization` picks as `external_id`."""

    external_id: Id
    phone: str
    prioritization: Prioritization


Upto50 = msgspec.Meta(max_length=50)


class IdentifyRequest(msgspec.Struct, kw_only=True):
    """`POST /users/identify`: up to 50 objects in each array."""

    aliases_to_identify: Annotated[list[AliasToIdentify], Upto50] | None = None
    emails_to_identify: Annotated[list[EmailToIdentify], Upto50] | None = None
    phone_numbers_to_identify: Annotated[list[PhoneToIdentify], Upto50] | None = None


class IdentifyResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How many profiles were identified or merged."""

    aliases_processed: int
    message: str
    emails_processed: int | None = None
    phone_numbers_processed: int | None = None


class NewAlias(msgspec.Struct, kw_only=True):
    """With `external_id`: add the alias to that user; without: create an alias-only user."""

    alias_name: Id
    alias_label: Id
    external_id: Id | None = None


class AliasRequest(msgspec.Struct):
    """`POST /users/alias/new`: up to 50 aliases."""

    user_aliases: Annotated[list[NewAlias], Upto50]


class AliasResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How many aliases were added; `errors` says why the others were not."""

    aliases_processed: int
    message: str
    errors: list[str] | None = None


class EmailToDelete(msgspec.Struct, kw_only=True):
    """The user with this email; `prioritization` picks one when several have it."""

    email: str
    prioritization: Prioritization | None = None


class PhoneToDelete(msgspec.Struct, kw_only=True):
    """The user with this phone number; `prioritization` picks one when several have it."""

    phone: str
    prioritization: Prioritization | None = None


class DeleteRequest(msgspec.Struct, kw_only=True):
    """`POST /users/delete`: up to 50 identifiers in all; a shared email or phone deletes no one."""

    external_ids: Annotated[list[Id], Upto50] | None = None
    user_aliases: Annotated[list[UserAlias], Upto50] | None = None
    braze_ids: Annotated[list[Id], Upto50] | None = None
    email_addresses: Annotated[list[str | EmailToDelete], Upto50] | None = None
    phone_numbers: Annotated[list[str | PhoneToDelete], Upto50] | None = None


class DeleteResponse(msgspec.Struct):
    """How many users were deleted."""

    deleted: int
    message: str


class ExportRequest(msgspec.Struct, kw_only=True):
    """`POST /users/export/ids`: up to 50 external ids and aliases, and/or one other identifier."""

    external_ids: Annotated[list[Id], Upto50] | None = None
    user_aliases: Annotated[list[UserAlias], Upto50] | None = None
    device_id: Id | None = None
    braze_id: Id | None = None
    email_address: str | None = None
    phone: str | None = None
    fields_to_export: list[str] | None = None


class PartnerCohort(msgspec.Struct):
    """A partner cohort the user is in."""

    partner: str
    cohort_id: str
    name: str


class Summary(msgspec.Struct):
    """Custom events or purchases of one name: first and last time, count."""

    name: str
    first: str
    last: str
    count: int


class Device(msgspec.Struct):
    """A device id of the user."""

    device_id: str


class ExportedUser(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A user with Braze's export field names; unset fields are left out."""

    external_id: str | None = None
    braze_id: str | None = None
    user_aliases: list[UserAlias] | None = None
    created_at: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    dob: str | None = None
    gender: str | None = None
    country: str | None = None
    home_city: str | None = None
    language: str | None = None
    time_zone: str | None = None
    email_subscribe: str | None = None
    custom_attributes: dict[str, Any] | None = None
    custom_events: list[Summary] | None = None
    purchases: list[Summary] | None = None
    devices: list[Device] | None = None
    cohorts: list[PartnerCohort] | None = None


class ExportResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The users found; `invalid_user_ids` lists identifiers that matched no one."""

    users: list[ExportedUser]
    message: str
    invalid_user_ids: list[str] | None = None
