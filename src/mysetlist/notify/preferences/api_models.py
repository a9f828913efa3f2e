"""The preferences API's contract: what `PUT /api/notifications/preferences` takes (each bad
field named in a 422) and what GET answers."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from mysetlist.core.time_zones import is_time_zone
from mysetlist.notify.api_models import Category, Channel, DigestFrequency

ClockTime = Annotated[
    str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24 h")
]
T = TypeVar("T")


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null (leave the field out to keep its setting)")
    return value


def _not_nullable(schema: dict[str, Any]) -> None:
    """The field's JSON schema without its `null` branch (null is refused, see _not_null)."""
    schema.pop("default", None)
    branches = [b for b in schema.pop("anyOf", []) if b != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


# A field an update may leave out, but not set to null: a plain optional field (so a 422
# names `channels.new_shows.email`, not a union branch) whose schema is not nullable.
Omittable = Annotated[T | None, BeforeValidator(_not_null), Field(json_schema_extra=_not_nullable)]
TRANSACTIONAL_EMAIL = "transactional email (security, account) cannot be turned off"
ALWAYS_IMMEDIATE = "this category is always sent immediately"


class ChannelSwitches(BaseModel):
    """Which channels a category may use; a channel left out keeps its setting."""

    model_config = ConfigDict(extra="forbid")
    email: Omittable[StrictBool] = None
    push: Omittable[StrictBool] = None
    in_app: Omittable[StrictBool] = None


class TransactionalChannelSwitches(ChannelSwitches):
    """Security and account email always goes out: only `true` is accepted for it."""

    @field_validator("email")
    @classmethod
    def _email_stays_on(cls, value: bool | None) -> bool | None:
        if value is False:
            raise ValueError(TRANSACTIONAL_EMAIL)
        return value


class ChannelMatrixUpdate(BaseModel):
    """category -> {channel: on}; categories left out keep their settings."""

    model_config = ConfigDict(extra="forbid")
    security: Omittable[TransactionalChannelSwitches] = None
    account: Omittable[TransactionalChannelSwitches] = None
    show_reminders: Omittable[ChannelSwitches] = None
    new_shows: Omittable[ChannelSwitches] = None
    artist_updates: Omittable[ChannelSwitches] = None
    vote_results: Omittable[ChannelSwitches] = None
    digests: Omittable[ChannelSwitches] = None
    marketing: Omittable[ChannelSwitches] = None


class DigestUpdate(BaseModel):
    """category -> how often its email comes; transactional ones and digests themselves are
    always `immediate`."""

    model_config = ConfigDict(extra="forbid")
    security: Omittable[DigestFrequency] = None
    account: Omittable[DigestFrequency] = None
    show_reminders: Omittable[DigestFrequency] = None
    new_shows: Omittable[DigestFrequency] = None
    artist_updates: Omittable[DigestFrequency] = None
    vote_results: Omittable[DigestFrequency] = None
    digests: Omittable[DigestFrequency] = None
    marketing: Omittable[DigestFrequency] = None

    @field_validator("security", "account", "digests")
    @classmethod
    def _always_immediate(cls, value: DigestFrequency | None) -> DigestFrequency | None:
        if value not in (None, DigestFrequency.immediate):
            raise ValueError(ALWAYS_IMMEDIATE)
        return value


class QuietHours(BaseModel):
    """Email and push wait until `end` (in the user's time zone); in-app is not held."""

    model_config = ConfigDict(extra="forbid")
    start: ClockTime
    end: ClockTime

    @field_validator("end")
    @classmethod
    def _not_empty(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("start"):
            raise ValueError("must differ from start")
        return value


class PreferencesUpdate(BaseModel):
    """`PUT /api/notifications/preferences`: only the fields given change; `quietHours:
    null` removes quiet hours. A 422 names each bad field and changes nothing."""

    model_config = ConfigDict(extra="forbid")
    channels: Omittable[ChannelMatrixUpdate] = None
    digest: Omittable[DigestUpdate] = None
    quietHours: QuietHours | None = None
    timezone: Omittable[Annotated[str, Field(max_length=64)]] = Field(
        default=None, description="IANA name, e.g. Europe/Berlin"
    )
    muted: Omittable[StrictBool] = Field(default=None, description="all but transactional")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        # Both Python and PostgreSQL must know it (core/time_zones.py; the route loads the
        # database's list first).
        if value is not None and not is_time_zone(value):
            raise ValueError("must be an IANA time zone name, e.g. Europe/Berlin")
        return value


class PreferencesRead(BaseModel):
    channels: dict[Category, dict[Channel, bool]]
    digest: dict[Category, DigestFrequency]
    quietHours: QuietHours | None
    timezone: str
    muted: bool
    transactionalCategories: list[Category]
