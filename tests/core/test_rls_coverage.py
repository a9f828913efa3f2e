"""Row-level security coverage: every table with per-user rows is protected in the database.

Found from the catalog, so tables added later are covered too: every relation with a
`user_id` column has RLS enabled and forced (or no user role may touch it at all), and
`authenticated`/`anon` hold privileges only on tables listed here as public or on tables
whose policies decide. The analytics per-user tables' policies are then exercised as
`authenticated` with a verified token's claims. Every test runs under a superuser owner and
under a plain owner role (the managed-database case, see `owner_db`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from mysetlist.core.db import Database, fetch_all_in
from tests.conftest import Servers, database_with_non_superuser_owner

pytestmark = pytest.mark.db

# Tables with a user_id column that no user role may read at all. Instead of RLS, the test
# asserts that neither `authenticated` nor `anon` holds any privilege on them.
NOT_USER_READABLE = {
    # ingest's anonymous/session id -> user map, read and written by the owner role only
    "analytics.identity_links",
    # the hourly rollup's work list of re-attributed hours
    "analytics.event_relinks",
    # the demo's ground truth, a test oracle (its schema is not even usable by user roles)
    "demo_truth.user_profile",
    "demo_truth.user_taste",
}

# Platform-wide data with no per-user rows, readable (never writable) by user roles.
PUBLIC_TO_USERS = {
    "app.genres",
    "app.artists",
    "app.venues",
    "app.shows",
    "app.songs",
    "app.setlist_songs",
    "public.platform_metrics",
    "analytics.hourly_real_time_metrics",
    "analytics.artist_popularity_warehouse",
    "analytics.show_engagement_warehouse",
    "analytics.daily_platform_metrics",
    "analytics.cohort_retention_weekly",
    "analytics.genre_trends_daily",
    # the best setlist predictors: display names and scores, no user ids (a view that reads
    # the per-user scores with its owner's rights)
    "analytics.setlist_leaderboard",
}

# Owner-rights views that show other fans' rows only for fans who opted in
# (app.users.discoverable): the consent rule is in the view (security_barrier), signed-in
# callers read them under their own role, anonymous callers not at all. The rule itself is
# attacked in tests/security/test_fan_discoverability.py.
CONSENTED_FAN_VIEWS = {"app.fan_directory", "app.fan_directory_follows"}

# Operational tables user roles must be refused outright (ETL tables are found by prefix).
REFUSED_TO_USERS = {
    "analytics.event_dedup",
    "analytics.write_keys",
    "analytics.job_runs",
    "analytics.watermarks",
    "analytics.tracking_job_runs",
    "analytics.tracking_watermarks",
    "analytics.identity_links",
    "analytics.event_relinks",
}

USER_ROLES = ("authenticated", "anon")

# Every relation of ours: procrastinate's tables are the job queue's (no user data, no grants).
RELATIONS_SQL = """
SELECT c.oid, n.nspname || '.' || c.relname AS name, c.relkind, c.relispartition,
       c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
       coalesce('security_invoker=true' = ANY (c.reloptions)
                OR 'security_invoker=on' = ANY (c.reloptions), false) AS security_invoker,
       coalesce('security_barrier=true' = ANY (c.reloptions), false) AS security_barrier,
       EXISTS (SELECT 1 FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
         AS has_user_id,
       (SELECT rn.nspname || '.' || r.relname
        FROM pg_class r JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE r.oid = pg_partition_root(c.oid)) AS partition_root
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND c.relname NOT LIKE 'procrastinate\\_%'
ORDER BY 2
"""

ROLE_PRIVILEGES_SQL = """
SELECT array_remove(ARRAY[
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'SELECT')
                OR has_any_column_privilege(%(role)s, %(oid)s, 'SELECT') THEN 'SELECT' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'INSERT')
                OR has_any_column_privilege(%(role)s, %(oid)s, 'INSERT') THEN 'INSERT' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'UPDATE')
                OR has_any_column_privilege(%(role)s, %(oid)s, 'UPDATE') THEN 'UPDATE' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'DELETE') THEN 'DELETE' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'TRUNCATE') THEN 'TRUNCATE' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'REFERENCES')
                OR has_any_column_privilege(%(role)s, %(oid)s, 'REFERENCES')
              THEN 'REFERENCES' END,
         CASE WHEN has_table_privilege(%(role)s, %(oid)s, 'TRIGGER') THEN 'TRIGGER' END
       ], NULL) AS privileges
"""


async def _relations(db: Database) -> list[dict[str, Any]]:
    """Every relation with what each user role may do on it (privileges include PUBLIC's)."""
    async with db.transaction() as conn:
        relations = await fetch_all_in(conn, RELATIONS_SQL)
        for rel in relations:
            rel["privileges"] = {}
            for role in USER_ROLES:
                rows = await fetch_all_in(
                    conn, ROLE_PRIVILEGES_SQL, {"role": role, "oid": rel["oid"]}
                )
                rel["privileges"][role] = set(rows[0]["privileges"])
    return relations


def _touchable(rel: dict[str, Any]) -> bool:
    return any(rel["privileges"].values())


async def test_every_table_with_user_rows_forces_row_level_security(owner_db: Database) -> None:
    relations = await _relations(owner_db)
    by_name = {rel["name"]: rel for rel in relations}
    problems = []
    for rel in relations:
        if not rel["has_user_id"]:
            continue
        name, kind = rel["name"], rel["relkind"]
        if name in NOT_USER_READABLE:
            if _touchable(rel):
                problems.append(f"{name}: listed as not user-readable, yet {rel['privileges']}")
        elif rel["relispartition"]:
            # Reached through its parent, whose policies apply; read directly, the partition's
            # own (absent) policies would, so user roles must hold nothing on it.
            root = by_name[rel["partition_root"]]
            if _touchable(rel) or not (root["rls"] and root["forced"]):
                problems.append(
                    f"{name}: a partition must be reachable only through its root"
                    f" {root['name']} (forced RLS), yet {rel['privileges']}"
                )
        elif kind in ("r", "p"):
            if not (rel["rls"] and rel["forced"]):
                problems.append(
                    f"{name}: has user_id but RLS enabled={rel['rls']} forced={rel['forced']}"
                    " (ENABLE and FORCE ROW LEVEL SECURITY with a policy, or revoke it from"
                    " user roles and list it in NOT_USER_READABLE)"
                )
        elif kind == "v" and rel["security_invoker"]:
            continue  # its tables' policies apply to the reader
        elif name in CONSENTED_FAN_VIEWS:
            if not rel["security_barrier"] or rel["privileges"]["anon"]:
                problems.append(
                    f"{name}: a consented fan view must be a security_barrier view that anon"
                    f" cannot read, yet barrier={rel['security_barrier']} {rel['privileges']}"
                )
        elif _touchable(rel):
            # Views run as their owner and materialized views have no RLS at all.
            problems.append(
                f"{name}: a relkind {kind!r} with user_id readable by {rel['privileges']}"
            )
    assert not problems, "\n".join(problems)
    # The discovery itself works: it sees the per-user tables we know of.
    with_user_id = {rel["name"] for rel in relations if rel["has_user_id"]}
    assert {
        "app.setlist_votes",
        "analytics.user_events",
        "analytics.daily_user_stats",
    } <= with_user_id


async def test_user_roles_reach_only_public_tables_and_tables_under_forced_rls(
    owner_db: Database,
) -> None:
    problems = []
    for rel in await _relations(owner_db):
        name = rel["name"]
        for role, privileges in rel["privileges"].items():
            if not privileges:
                continue
            # TRUNCATE, REFERENCES and TRIGGER are not subject to row-level security.
            if privileges & {"TRUNCATE", "REFERENCES", "TRIGGER"}:
                problems.append(f"{role} holds {sorted(privileges)} on {name}")
            elif name in PUBLIC_TO_USERS or name in CONSENTED_FAN_VIEWS:
                if privileges != {"SELECT"}:
                    problems.append(f"{role} may write public table {name}: {sorted(privileges)}")
            elif not (rel["rls"] and rel["forced"]):
                problems.append(
                    f"{role} holds {sorted(privileges)} on {name}, which is neither public"
                    " (PUBLIC_TO_USERS) nor under forced row-level security"
                )
    assert not problems, "\n".join(problems)


async def test_user_roles_are_refused_operational_tables(
    owner_db: Database, claims_for: Any
) -> None:
    async with owner_db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            "SELECT n.nspname AS schema, c.relname AS name,"
            "       (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0"
            "          AND NOT a.attisdropped AND a.attidentity = '' AND a.attgenerated = ''"
            "        ORDER BY a.attnum LIMIT 1) AS first_column"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
            "   AND (n.nspname || '.' || c.relname = ANY(%s)"
            "        OR (n.nspname = 'analytics' AND c.relname LIKE 'etl\\_%%'))",
            (list(REFUSED_TO_USERS),),
        )
    found = {f"{r['schema']}.{r['name']}" for r in rows}
    # Not vacuous: the ingest's and the ETL's operational tables are there.
    assert {"analytics.event_dedup", "analytics.write_keys"} <= found
    assert any(name.startswith("analytics.etl_") for name in found)
    # An operator's token is still `authenticated`: operators read these through the API.
    fan, operator = claims_for(uuid.uuid4()), claims_for(uuid.uuid4(), admin=True)
    callers: list[Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]] = [
        lambda: owner_db.as_caller(fan),
        lambda: owner_db.as_caller(operator),
        lambda: owner_db.as_role("anon", {"role": "anon"}),
    ]
    for r in rows:
        table = sql.Identifier(r["schema"], r["name"])
        column = sql.Identifier(r["first_column"])
        for statement in [
            sql.SQL("SELECT * FROM {} LIMIT 1").format(table),
            sql.SQL("INSERT INTO {} DEFAULT VALUES").format(table),
            sql.SQL("UPDATE {} SET {} = {}").format(table, column, column),
            sql.SQL("DELETE FROM {}").format(table),
            sql.SQL("TRUNCATE {}").format(table),
        ]:
            for caller in callers:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    async with caller() as conn:
                        await conn.execute(statement)


async def test_user_roles_cannot_call_functions_that_run_as_their_owner(
    owner_db: Database,
) -> None:
    # A SECURITY DEFINER function runs as its owner, whom RLS lets see every row: one that a
    # user role may call is a hole in the policies unless it was written as a reviewed API.
    async with owner_db.transaction() as conn:
        rows = await fetch_all_in(
            conn,
            "SELECT n.nspname || '.' || p.proname AS name, r.role"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " CROSS JOIN unnest(%s::text[]) AS r(role)"
            " WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            "   AND has_schema_privilege(r.role, n.oid, 'USAGE')"
            "   AND has_function_privilege(r.role, p.oid, 'EXECUTE')",
            (list(USER_ROLES),),
        )
    assert rows == []


def test_migrating_as_an_owner_that_cannot_use_the_api_roles_fails_clearly(
    servers: Servers, database_url: str
) -> None:
    # Without the membership every user request would fail with "permission denied to set
    # role" after a migration that had succeeded (a managed database's default).
    with (
        pytest.raises(psycopg.errors.RaiseException, match="cannot switch to the API role") as exc,
        database_with_non_superuser_owner(servers.admin_url, grant_api_roles=False),
    ):
        pass
    assert "GRANT anon, authenticated, service_role TO mysetlist_owner_" in str(exc.value)


# --- the analytics per-user tables' policies -------------------------------------------------

DAY = date(2026, 1, 15)
AT = datetime(2026, 1, 15, 12, tzinfo=UTC)

PER_USER_ROWS = {
    "daily_user_stats": (
        "INSERT INTO analytics.daily_user_stats (day, user_id, events, page_views, unique_pages,"
        " event_types, sessions, session_seconds, artist_views, show_views, searches, vote_events,"
        " votes, follows, unfollows, shares, notification_opens, notification_clicks)"
        " VALUES (%(day)s, %(user)s, 1, 1, 1, 1, 1, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
    ),
    "user_engagement_warehouse": (
        "INSERT INTO analytics.user_engagement_warehouse (day, user_id, sessions, page_views,"
        " unique_pages, event_types, session_score, page_view_score, diversity_score,"
        " event_type_score, engagement_score)"
        " VALUES (%(day)s, %(user)s, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 0.1)"
    ),
    "user_behavior_warehouse": (
        "INSERT INTO analytics.user_behavior_warehouse (user_id, first_active_day,"
        " last_active_day, active_days, events, sessions, page_views, searches, votes, follows,"
        " unfollows, engagement_score, votes_on_happened_shows, correct_votes)"
        " VALUES (%(user)s, %(day)s, %(day)s, 1, 1, 1, 1, 0, 0, 0, 0, 0.1, 0, 0)"
    ),
    "voting_patterns_warehouse": (
        "INSERT INTO analytics.voting_patterns_warehouse (grain, scope_id, user_id, votes, voters,"
        " shows_voted, votes_on_happened_shows, correct_votes)"
        " VALUES ('user', %(user)s::text, %(user)s::uuid, 1, 1, 1, 0, 0)"
    ),
    "user_events": (
        "INSERT INTO analytics.user_events (user_id, event_type, created_at)"
        " VALUES (%(user)s, 'page_view', %(at)s)"
    ),
}


async def _users_with_rows(db: Database, table: str) -> tuple[str, str]:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    async with db.transaction() as conn:  # the owner role writes, as the ETL and ingest do
        for user in (a, b):
            await conn.execute(PER_USER_ROWS[table], {"user": user, "day": DAY, "at": AT})
    return a, b


async def _visible_users(conn: psycopg.AsyncConnection[Any], table: str) -> set[str]:
    cur = await conn.execute(
        sql.SQL("SELECT DISTINCT user_id::text FROM {} WHERE user_id IS NOT NULL").format(
            sql.Identifier("analytics", table)
        )
    )
    return {r[0] for r in await cur.fetchall()}


@pytest.mark.parametrize("table", sorted(PER_USER_ROWS))
async def test_analytics_users_read_only_their_own_rows(
    owner_db: Database, claims_for: Any, table: str
) -> None:
    a, b = await _users_with_rows(owner_db, table)
    async with owner_db.as_caller(claims_for(a)) as conn:
        assert await _visible_users(conn, table) == {a}
    async with owner_db.as_caller(claims_for(b)) as conn:
        assert await _visible_users(conn, table) == {b}
    async with owner_db.as_caller(claims_for(uuid.uuid4(), admin=True)) as conn:
        assert {a, b} <= await _visible_users(conn, table)
    async with owner_db.as_role("authenticated", {"role": "authenticated"}) as conn:
        assert await _visible_users(conn, table) == set()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        async with owner_db.as_role("anon", {"role": "anon"}) as conn:
            await _visible_users(conn, table)


@pytest.mark.parametrize("table", sorted(PER_USER_ROWS))
async def test_analytics_users_cannot_write_their_rows(
    owner_db: Database, claims_for: Any, table: str
) -> None:
    # The warehouse and the event log are written by the owner role only: a fan cannot
    # inflate their own stats or plant events, even for themselves.
    a, _ = await _users_with_rows(owner_db, table)
    target = sql.Identifier("analytics", table)
    statements: list[tuple[sql.SQL | sql.Composed, dict[str, object] | None]] = [
        (sql.SQL(PER_USER_ROWS[table]), {"user": a, "day": date(2026, 1, 16), "at": AT}),
        (sql.SQL("UPDATE {} SET user_id = user_id").format(target), None),
        (sql.SQL("DELETE FROM {}").format(target), None),
    ]
    for statement, params in statements:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            async with owner_db.as_caller(claims_for(a)) as conn:
                await conn.execute(statement, params)
    async with owner_db.transaction() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE user_id = %s").format(target), (a,)
        )
        assert await cur.fetchone() == (1,)


async def test_voting_patterns_show_and_artist_rows_are_public(
    owner_db: Database, claims_for: Any
) -> None:
    a, b = await _users_with_rows(owner_db, "voting_patterns_warehouse")
    show, artist = str(uuid.uuid4().int % 10**12), str(uuid.uuid4().int % 10**12)
    async with owner_db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.voting_patterns_warehouse (grain, scope_id, show_id, artist_id,"
            " votes, voters, shows_voted, votes_on_happened_shows, correct_votes)"
            " VALUES ('show', %(show)s::text, %(show)s::bigint, %(artist)s::bigint, 2, 2, 1, 2, 1),"
            "        ('artist', %(artist)s::text, NULL, %(artist)s::bigint, 2, 2, 1, 2, 1)",
            {"show": show, "artist": artist},
        )
    query = (
        "SELECT grain, scope_id FROM analytics.voting_patterns_warehouse"
        " WHERE scope_id = ANY(%s) ORDER BY grain, scope_id"
    )
    mine = [a, b, show, artist]
    public = [("artist", artist), ("show", show)]
    async with owner_db.as_caller(claims_for(a)) as conn:
        assert await (await conn.execute(query, (mine,))).fetchall() == [*public, ("user", a)]
        # No user-grain row but one's own, whichever filter the query uses.
        cur = await conn.execute(
            "SELECT DISTINCT user_id::text FROM analytics.voting_patterns_warehouse"
            " WHERE grain = 'user'"
        )
        assert await cur.fetchall() == [(a,)]
    async with owner_db.as_role("authenticated", {"role": "authenticated"}) as conn:
        assert await (await conn.execute(query, (mine,))).fetchall() == public
    async with owner_db.as_caller(claims_for(uuid.uuid4(), admin=True)) as conn:
        rows = await (await conn.execute(query, (mine,))).fetchall()
    assert sorted(rows) == sorted([*public, ("user", a), ("user", b)])
