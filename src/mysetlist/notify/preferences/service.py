"""Reading and writing preferences: by the caller as their token's own database role
(`as_caller`: a fan's token under RLS; a service token as `service_role`, whose statements
here still name only its own user, `auth.uid()`), or by a signed unsubscribe link (the
token proves the user; no session, as mailbox providers send no cookies)."""

from __future__ import annotations

from typing import Any

import orjson

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_one_in, read_sql
from mysetlist.core.time_zones import load_time_zones
from mysetlist.notify.catalog import PRODUCT_CATEGORIES
from mysetlist.notify.config import NotifySettings
from mysetlist.notify.errors import NoProfile
from mysetlist.notify.preferences.api_models import PreferencesRead, PreferencesUpdate
from mysetlist.notify.preferences.model import Preferences, apply_update, from_row

_PACKAGE = "mysetlist.notify.preferences"


def _prefs(row: dict[str, Any] | None, settings: NotifySettings) -> Preferences:
    if row is None:
        raise NoProfile()
    return from_row(row if row["stored"] else None, settings, row["profile_timezone"])


async def get(db: Database, settings: NotifySettings, claims: Claims) -> PreferencesRead:
    await load_time_zones(db)
    async with db.as_caller(claims) as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "read.sql"))
    return _prefs(row, settings).read()


async def put(
    db: Database, settings: NotifySettings, claims: Claims, update: PreferencesUpdate
) -> PreferencesRead:
    await load_time_zones(db)  # stored zones are read through the validator
    async with db.as_caller(claims) as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "read.sql"))
        updated = apply_update(_prefs(row, settings), update)
        await conn.execute(
            read_sql(_PACKAGE, "write.sql"),
            {
                "channels": orjson.dumps(updated.channels).decode(),
                "digest": orjson.dumps(updated.digest).decode(),
                "quiet_start": updated.quiet_start,
                "quiet_end": updated.quiet_end,
                "timezone": updated.stored_timezone,
                "muted": updated.muted,
            },
        )
    return updated.read()


async def unsubscribe(db: Database, user_id: str, category: str) -> bool:
    """Whether the user is there to unsubscribe (an erased one is not: nothing written)."""
    async with db.transaction() as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "unsubscribe.sql"), {"user_id": user_id, "category": category}
        )
    return row is not None and row["users"] > 0


async def of_user(db: Database, settings: NotifySettings, user_id: str) -> Preferences | None:
    await load_time_zones(db)
    async with db.transaction() as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "of_user.sql"), {"user_id": user_id})
    return None if row is None else _prefs(row, settings)


async def set_email_choices(db: Database, user_id: str, enabled: set[str]) -> bool:
    """Whether the user is there to save for (an erased one is not: nothing written)."""
    channels = {c: {"email": c in enabled} for c in PRODUCT_CATEGORIES}
    async with db.transaction() as conn:
        row = await fetch_one_in(
            conn, read_sql(_PACKAGE, "email_choices_write.sql"),
            {"user_id": user_id, "channels": orjson.dumps(channels).decode()},
        )  # fmt: skip
    return row is not None
