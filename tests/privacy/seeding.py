"""A user seeded into every table that declares personal data (found by discovery, so a
table added later is seeded too), and the scan that looks for that user anywhere."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection, sql

from mysetlist.core.db import fetch_all_in, fetch_one_in
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.redis_client import RedisClient
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.discovery import IDENTIFYING, personal_columns, tables_of

# Values that satisfy a table's CHECK constraints, where the type's dummy would not.
OVERRIDES: dict[str, dict[str, Any]] = {
    "analytics.identity_links": {"kind": "anonymous"},
    "analytics.voting_patterns_warehouse": {"grain": "user"},
    "analytics.ml_churn_predictions": {"risk_bucket": "high", "probability": 0.9},
    "analytics.etl_runs": {
        "trigger": "api", "mode": "daily", "status": "succeeded", "checks_status": "not_run",
    },
    "analytics.etl_audit": {"action": "trigger"},
    "analytics.audit_log": {"action": "privacy.export", "outcome": "success"},
    "notify.digest_items": {"frequency": "daily"},
    "notify.notification_delivery": {"channel": "email", "status": "sent"},
    "notify.email_templates": {"locale": "en", "version": 1},
    "notify.send_requests": {"state": "done"},
    "notify.suppressions": {"reason": "bounce"},
    "privacy.erasure_requests": {
        "requested_by_role": "operator", "source": "operator", "status": "done",
    },
}  # fmt: skip
# SQL for columns whose value must differ per seeded user (a UNIQUE column with no default).
LITERAL_OVERRIDES: dict[str, dict[str, str]] = {
    "demo_truth.user_profile": {
        "user_no": "(SELECT coalesce(max(user_no), 0) + 1 FROM demo_truth.user_profile)",
    },
}
# Tables a seeded row would disturb (the test's own erasure request is seeded by the API).
NOT_SEEDED = {"privacy.erasure_requests"}

_DUMMIES = {
    "uuid": "gen_random_uuid()", "text": "'x' || md5(random()::text)", "integer": "1",
    "bigint": "1", "smallint": "1", "double precision": "0.5", "real": "0.5", "numeric": "0.5",
    "date": "current_date", "timestamp with time zone": "now()", "boolean": "false",
    "jsonb": "'{}'::jsonb", "time without time zone": "'00:00'", "inet": "'192.0.2.1'::inet",
    "bytea": "convert_to(gen_random_uuid()::text, 'UTF8')",  # unique: bytea keys (hashes)
}  # fmt: skip

COLUMNS_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
       (SELECT confrelid::regclass::text || '.' || fa.attname
        FROM pg_constraint k JOIN pg_attribute fa
          ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1]
        WHERE k.contype = 'f' AND k.conrelid = a.attrelid AND k.conkey = ARRAY[a.attnum]
        LIMIT 1) AS references
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


@dataclass
class SeededUser:
    user_id: str
    email: str
    email_hash: bytes
    anonymous_id: str
    session_id: str

    def needles(self) -> list[str]:
        return [
            self.user_id, self.email, self.email_hash.hex(), self.anonymous_id, self.session_id,
        ]  # fmt: skip

    def redis_needles(self) -> list[bytes]:
        plain = [self.user_id, self.email, self.anonymous_id, self.session_id]
        hashed = [hashlib.blake2b(p.encode(), digest_size=12).hexdigest() for p in plain]
        return [n.encode() for n in [*plain, *hashed, self.email_hash.hex()]]


def new_user(cipher: FieldCipher) -> SeededUser:
    tag = uuid.uuid4().hex[:12]
    email = f"fan-{tag}@example.test"
    return SeededUser(
        user_id=str(uuid.uuid4()), email=email, email_hash=cipher.lookup_hash(email),
        anonymous_id=f"anon-{tag}", session_id=f"sess-{tag}",
    )  # fmt: skip


async def _catalog_row(conn: AsyncConnection[Any], ref: str, user_id: str) -> Any:
    """A value of the referenced column, of the user's own row where that table has them."""
    table, _, column = ref.rpartition(".")
    schema, name = table.split(".", 1) if "." in table else ("public", table)
    per_user = await fetch_one_in(
        conn,
        "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'user_id'",
        (table,),
    )
    where = sql.SQL("WHERE user_id = {}").format(user_id) if per_user else sql.SQL("")
    row = await fetch_one_in(
        conn,
        sql.SQL("SELECT {} AS v FROM {} {} LIMIT 1").format(
            sql.Identifier(column), sql.Identifier(schema, name), where
        ),
    )
    return None if row is None else row["v"]


async def seed_catalog(conn: AsyncConnection[Any]) -> None:
    """An artist, venue, show and song for the per-user rows to point at."""
    await conn.execute(
        """WITH a AS (INSERT INTO app.artists (name) VALUES ('Seed Band') RETURNING id),
                v AS (INSERT INTO app.venues (name, city, country, capacity, timezone)
                      VALUES ('Seed Hall', 'Oslo', 'NO', 100, 'Europe/Oslo') RETURNING id),
                s AS (INSERT INTO app.shows (artist_id, venue_id, starts_at, status)
                      SELECT a.id, v.id, now() + interval '3 days', 'scheduled' FROM a, v
                      RETURNING id)
           INSERT INTO app.songs (artist_id, title) SELECT id, 'Seed Song' FROM a"""
    )


async def seed_user_everywhere(
    conn: AsyncConnection[Any], cipher: FieldCipher, user: SeededUser
) -> set[str]:
    """One row about `user` in every table that declares personal data; returns the tables."""
    await conn.execute(
        "INSERT INTO app.users (id, display_name, email_encrypted, email_hash)"
        " VALUES (%s, %s, %s, %s)",
        (user.user_id, "Seed Fan", cipher.encrypt(user.email, context=b"users.email"),
         user.email_hash),
    )  # fmt: skip
    tables = tables_of(await personal_columns(conn))
    seeded = {"app.users"}
    pending = [
        t for t, cols in tables.items()
        if t not in seeded | NOT_SEEDED and any(c.kind in IDENTIFYING for c in cols)
    ]  # fmt: skip
    # Referenced tables first: retry what failed on a missing referenced row.
    for _ in range(len(pending) + 1):
        failed = []
        for table in pending:
            if not await _seed_table(conn, table, tables[table], user, cipher):
                failed.append(table)
            else:
                seeded.add(table)
        if not failed or failed == pending:
            pending = failed
            break
        pending = failed
    assert not pending, f"could not seed {pending}: add values to OVERRIDES in this file"
    # An event from before the user identified: only the anonymous id ties it to them.
    await conn.execute(
        "INSERT INTO analytics.user_events (event_id, message_id, anonymous_id, event_type,"
        " created_at, received_at, source) VALUES (gen_random_uuid(), %s, %s, 'page_view',"
        " now(), now(), 'own')",
        (f"m-{uuid.uuid4().hex}", user.anonymous_id),
    )
    await conn.execute(
        "INSERT INTO analytics.identity_links (kind, id, user_id) VALUES ('session', %s, %s)",
        (user.session_id, user.user_id),
    )
    return seeded


async def _seed_table(
    conn: AsyncConnection[Any], table: str, personal: list[Any], user: SeededUser,
    cipher: FieldCipher,
) -> bool:  # fmt: skip
    by_kind = {c.column: c for c in personal}
    values: dict[str, Any] = {}
    literals: dict[str, str] = {}
    for col in await fetch_all_in(conn, COLUMNS_SQL, (table,)):
        name, type_ = col["name"], col["type"]
        declared = by_kind.get(name)
        if declared is not None and declared.kind in ("user_id", "claimed_user_id"):
            values[name] = user.user_id
        elif declared is not None and declared.kind in ("anonymous_id", "session_id"):
            values[name] = user.anonymous_id if declared.kind == "anonymous_id" else user.session_id
        elif declared is not None and declared.kind == "email_hash":
            values[name] = user.email_hash
        elif declared is not None and declared.kind == "contact":
            values[name] = (
                cipher.encrypt(user.email, context=b"seed") if type_ == "bytea" else user.email
            )
        elif declared is not None and declared.kind == "ip":
            values[name] = "198.51.100.7"
        elif name in OVERRIDES.get(table, {}):
            values[name] = OVERRIDES[table][name]
        elif name in LITERAL_OVERRIDES.get(table, {}):
            literals[name] = LITERAL_OVERRIDES[table][name]
        elif col["references"]:
            ref = await _catalog_row(conn, col["references"], user.user_id)
            if ref is None and col["not_null"]:
                return False
            values[name] = ref
        elif col["not_null"] and not col["has_default"]:
            base = type_.split("(")[0]
            if type_.endswith("[]"):
                literals[name] = "'{}'"
            else:
                literals[name] = _DUMMIES[base]
    if table == "analytics.user_events":
        values.setdefault("message_id", f"m-{uuid.uuid4().hex}")
    schema, name = table.split(".", 1)
    names = [*values, *literals]
    exprs = [sql.Placeholder() for _ in values] + [sql.SQL(v) for v in literals.values()]  # type: ignore[arg-type]
    await conn.execute("SAVEPOINT seed")
    try:
        await conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(schema, name),
                sql.SQL(", ").join(sql.Identifier(n) for n in names),
                sql.SQL(", ").join(exprs),
            ),
            list(values.values()),
        )
    except Exception as exc:
        await conn.execute("ROLLBACK TO SAVEPOINT seed")
        if "foreign key" in str(exc) or "violates not-null" in str(exc):
            return False
        raise AssertionError(f"seeding {table}: {exc}") from exc
    await conn.execute("RELEASE SAVEPOINT seed")
    return True


def recommender_artifact(user_ids: list[str]) -> bytes:
    """A numpy archive shaped like the recommender's (user ids and ALS user factors)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        user_ids=np.asarray(user_ids, dtype=str),
        als_user_factors=np.ones((len(user_ids), 4), dtype=np.float32),
        als_item_factors=np.ones((3, 4), dtype=np.float32),
        artist_ids=np.asarray([1, 2, 3], dtype=np.int64),
    )
    return buf.getvalue()


async def find_in_database(
    conn: AsyncConnection[Any], needles: list[str], *, kept: dict[str, list[str]]
) -> list[str]:
    """`table: needle` for every table whose rows (as JSON, bytea as hex) hold a needle;
    `kept` names columns left out per table (kept by design). Every table of every schema,
    procrastinate's included; numpy archives are opened and their user ids read."""
    tables = await fetch_all_in(
        conn,
        "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition"
        "   AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "   AND n.nspname NOT LIKE 'pg\\_%%'",
    )
    found = []
    for t in tables:
        qualified = f"{t['schema']}.{t['name']}"
        row = await fetch_one_in(
            conn,
            sql.SQL(
                "SELECT array_agg(DISTINCT n) AS hits FROM {} AS r,"
                " unnest(%s::text[]) AS n"
                " WHERE position(lower(n) in lower((to_jsonb(r) - %s::text[])::text)) > 0"
            ).format(sql.Identifier(t["schema"], t["name"])),
            (needles, kept.get(qualified, [])),
        )
        for hit in (row or {}).get("hits") or []:
            found.append(f"{qualified}: {hit}")
    for art in await fetch_all_in(
        conn, "SELECT id, artifact FROM analytics.ml_models WHERE artifact_format = 'npz'"
    ):
        with np.load(io.BytesIO(bytes(art["artifact"])), allow_pickle=False) as z:
            ids = {str(u) for u in z["user_ids"]} if "user_ids" in z.files else set()
        found += [f"analytics.ml_models[{art['id']}].user_ids: {n}" for n in needles if n in ids]
    return found


async def find_in_redis(redis: RedisClient, prefix: str, needles: list[bytes]) -> list[str]:
    """Keys under `prefix` whose name or content holds a needle."""
    found = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        parts: list[Any] = [key]  # bytes: the client does not decode
        if kind == "zset":
            parts += [pair[0] for pair in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "set":
            parts += list(await redis.smembers(key))
        elif kind == "hash":
            for f, v in (await redis.hgetall(key)).items():
                parts += [f, v]
        elif kind == "list":
            parts += await redis.lrange(key, 0, -1)
        elif kind == "string":
            parts.append(await redis.get(key) or b"")
        found += [f"{key!r}: {n!r}" for n in needles for p in parts if n in p]
    return found


def redis_prefix() -> str:
    from mysetlist.core.config import load_settings

    return load_settings().redis_key_prefix


async def seed_store(runtime: Runtime, *users: SeededUser) -> set[str]:
    """Each user in every declared table, in a stored recommender model and in Redis where
    tracking, the rate limiter and the recommender keep them; returns the tables seeded."""
    seeded: set[str] = set()
    async with runtime.db.transaction() as conn:
        await seed_catalog(conn)
        for user in users:
            seeded = await seed_user_everywhere(conn, runtime.cipher, user)
        await conn.execute(
            "INSERT INTO analytics.ml_models (name, version, params, metrics, primary_metric,"
            " artifact, artifact_format, active, decision) VALUES ('seed_recommender',"
            " (SELECT coalesce(max(version), 0) + 1 FROM analytics.ml_models"
            "  WHERE name = 'seed_recommender'), '{}', '{\"ndcg\": 0.1}', 'ndcg', %s, 'npz', false,"
            " 'kept')",
            (recommender_artifact([u.user_id for u in users]),),
        )
    prefix, redis = redis_prefix(), runtime.redis
    for user in users:
        # what tracking, the rate limiter and the recommender keep (see their modules)
        await redis.zadd(f"{prefix}:live:users", {user.user_id: time.time()})
        await redis.zadd(f"{prefix}:live:visitors", {user.anonymous_id: time.time()})
        await redis.zadd(f"{prefix}:live:sessions", {user.session_id: time.time()})
        await redis.set(f"{prefix}:user-cache-gen:{user.user_id}", 3)
        await redis.set(f"{prefix}:recommendations:{user.user_id}:3:artists", b"[1,2]")
        limited = hashlib.blake2b(user.user_id.encode(), digest_size=12).hexdigest()
        await redis.set(f"{prefix}:ratelimit/LIMITER/user/{limited}/100/1/second", 5)
        await redis.hset(f"{prefix}:live:events:99", "page_view", 7)  # an aggregate: stays
    return seeded
