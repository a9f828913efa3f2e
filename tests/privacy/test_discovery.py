"""Personal data is found from the catalogue: every table holding data about a user
declares it (a reference to app.users or a `personal:` comment), or this test fails."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mysetlist.core.runtime import Runtime
from mysetlist.privacy.discovery import (
    KINDS,
    DeclarationError,
    parse_declaration,
    personal_columns,
    undeclared_suspects,
)

pytestmark = pytest.mark.db


async def test_no_table_holds_user_data_without_declaring_it(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        suspects = await undeclared_suspects(conn)
    assert suspects == [], (
        "columns that look personal but declare nothing: add a reference to app.users or"
        " COMMENT ON COLUMN ... IS 'personal: <kind>[; erase: <action>]' (or 'personal: none')"
        f" in the table's migration: {suspects}"
    )


async def test_the_tables_about_users_are_found(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        tables = {c.qualified_table for c in await personal_columns(conn)}
    assert {
        "app.users", "app.setlist_votes", "app.follows", "app.push_subscriptions",
        "analytics.user_events", "analytics.identity_links", "analytics.ml_churn_predictions",
        "analytics.setlist_fan_scores", "notify.notifications", "notify.notification_delivery",
        "notify.user_notification_preferences", "analytics.audit_log",
    } <= tables  # fmt: skip


async def test_a_new_table_is_covered_by_reference_or_caught_undeclared(runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "CREATE TABLE notify.discovery_probe_inbox (id bigint, user_id uuid REFERENCES"
            " app.users(id), subscriber_email text, seen_from inet, device_id text)"
        )
        await conn.execute(
            "COMMENT ON COLUMN notify.discovery_probe_inbox.device_id IS 'personal: session_id'"
        )
        found = {
            (c.column, c.kind)
            for c in await personal_columns(conn)
            if c.table == "discovery_probe_inbox"
        }
        suspects = await undeclared_suspects(conn)
        raise psycopg.Rollback()  # the probe table never lands
    assert found == {("user_id", "user_id"), ("device_id", "session_id")}
    assert {
        "notify.discovery_probe_inbox.subscriber_email",
        "notify.discovery_probe_inbox.seen_from",
    } <= set(suspects)


@given(kind=st.sampled_from(sorted(KINDS)), erase=st.sampled_from(["delete", "nullify", "keep"]))
def test_declarations_parse(kind: str, erase: str) -> None:
    assert parse_declaration(f"Some words.\npersonal: {kind}; erase: {erase}") == (kind, erase)
    assert parse_declaration(f"personal: {kind}") == (kind, "delete")


@given(text=st.text(max_size=80))
def test_any_comment_either_declares_nothing_or_a_known_kind(text: str) -> None:
    try:
        parsed = parse_declaration(text)
    except DeclarationError:
        return
    assert parsed is None or parsed[0] in KINDS
