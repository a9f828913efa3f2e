"""GDPR erasure: every row about a user, in every schema, deleted or irreversibly
anonymised, plus the user's Redis keys and model-artifact rows.

Durable: `request_erasure` writes a `privacy.erasure_requests` row and defers the
`privacy.erase_user` job in one transaction; a worker that dies mid-way leaves the row
`pending`, and the job's retry or the periodic sweep (`resume_pending_erasures`) runs it
again. Every step is idempotent and the database step is one transaction, so a rerun
finishes what a crash left. Steps, in order (the identifiers are read from the database,
so the database goes last):

1. Redis: every key under MYSETLIST_REDIS_KEY_PREFIX whose name holds one of the user's
   identifiers (or its rate-limit hash) is deleted; set, sorted-set and hash entries holding
   one are removed; strings holding one are deleted (cached recommendations, live-metric
   sets, rate-limit counters, cache generations, whatever a capability adds later).
2. Models: the user's rows are removed from numpy-archive artifacts (the recommender's
   user ids and ALS user factors). Removed, not retrained: the rest of the model is
   unchanged and the next nightly training no longer sees the user. Serving processes
   keep the copy they loaded until the next promoted version.
3. Database, one transaction: the user's rows as `user_rows.py` defines them (the rows
   the export reads): those a `delete` column matches are deleted, `nullify` columns are
   blanked (with the row's other `nullify` columns, e.g. an audit entry's IP), `keep`
   columns stay (the suppression list's keyed hash); the user's id is blanked where it is
   an attribute of another user's row. The request row is marked done and keeps counts
   per table, never the erased identifiers.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import orjson
from psycopg import AsyncConnection

from mysetlist.core.audit import record_audit
from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.job_queue import defer_in_transaction, hold_task_lock
from mysetlist.core.json_logging import request_id_var
from mysetlist.core.redis_client import RedisClient
from mysetlist.core.token_revocation import TokenRevocations
from mysetlist.privacy.user_rows import Identifiers, TableRows, identifiers_of, user_rows

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.privacy"
QUEUE = "privacy"
ERASE_TASK = "privacy.erase_user"
USERS_TABLE = "app.users"


async def request_erasure(
    db: Database,
    user_id: str,
    *,
    requested_by: str | None,
    requested_by_role: str,
    source: str,
    revocations: TokenRevocations,
    ip: str | None = None,
) -> tuple[int, bool]:
    """Record the request and defer its job in one transaction; (request id, created).
    A user with an erasure pending gets that request back (nothing is queued twice).
    `revocations`: the runtime's, which applies the user's token revocation at once."""
    why = "why: the erasure request, its job and the token revocation, for the fan who asked"
    async with db.as_owner(why) as conn:
        row = await fetch_one_in(
            conn,
            read_sql(_PACKAGE, "erasure_request_insert.sql"),
            {
                "user_id": user_id,
                "requested_by": requested_by,
                "requested_by_role": requested_by_role,
                "source": source,
                "request_id": request_id_var.get(),
            },
        )
        assert row is not None
        request_id, created = int(row["id"]), bool(row["created"])
        # From this moment no token or dashboard session of the user works (401 everywhere).
        from mysetlist.core.token_revocation import revoke_user_tokens

        await revoke_user_tokens(conn, user_id, revocations)
        if created:
            await defer_in_transaction(conn, ERASE_TASK, queue=QUEUE, request_id=request_id)
        await record_audit(
            conn,
            "privacy.erasure_requested",
            actor_id=requested_by,
            actor_role=requested_by_role,
            target=("user", user_id),
            ip=ip,
            details={"erasure_request": request_id, "source": source, "created": created},
        )
    return request_id, created


async def erasure_status(db: Database, request_id: int) -> dict[str, Any] | None:
    async with db.transaction() as conn:
        return await fetch_one_in(
            conn, read_sql(_PACKAGE, "erasure_status.sql"), {"id": request_id}
        )


async def erase(
    db: Database, redis: RedisClient, cipher: FieldCipher, request_id: int, *, prefix: str
) -> dict[str, Any] | None:
    """Carry out erasure request `request_id`; its final status (None: unknown id).
    Another run of the same request going on returns at once (it will finish it)."""
    async with hold_task_lock(db, f"{ERASE_TASK}:{request_id}") as held:
        if not held:
            return await erasure_status(db, request_id)
        async with db.transaction() as conn:
            claimed = await fetch_one_in(
                conn, read_sql(_PACKAGE, "erasure_claim.sql"), {"id": request_id}
            )
        if claimed is None:
            return await erasure_status(db, request_id)
        ids = await collect_identifiers(db, cipher, str(claimed["user_id"]))
        redis_keys = await scrub_redis(redis, ids, prefix=prefix)
        models = await scrub_model_artifacts(db, ids)
        await erase_rows(db, ids, request_id, redis_keys=redis_keys, models=models)
        return await erasure_status(db, request_id)


async def collect_identifiers(db: Database, cipher: FieldCipher, user_id: str) -> Identifiers:
    async with db.transaction() as conn:
        return await identifiers_of(conn, cipher, user_id)


def _holds(value: bytes | str, needles: list[bytes]) -> bool:
    data = value.encode() if isinstance(value, str) else value
    return any(n in data for n in needles)


async def scrub_redis(redis: RedisClient, ids: Identifiers, *, prefix: str) -> int:
    """Remove the user from every key under `prefix`; how many keys were deleted or edited."""
    needles = ids.redis_needles()
    touched = 0
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        if _holds(key, needles):
            touched += int(await redis.delete(key))
            continue
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        changed = 0
        if kind == "zset":
            members = [m async for m, _ in redis.zscan_iter(key) if _holds(m, needles)]
            changed = int(await redis.zrem(key, *members)) if members else 0
        elif kind == "set":
            members = [m async for m in redis.sscan_iter(key) if _holds(m, needles)]
            changed = int(await redis.srem(key, *members)) if members else 0
        elif kind == "hash":
            fields = [
                f
                async for f, v in redis.hscan_iter(key)
                if _holds(f, needles) or _holds(v, needles)
            ]
            changed = int(await redis.hdel(key, *fields)) if fields else 0
        elif kind == "list":
            for item in await redis.lrange(key, 0, -1):
                if _holds(item, needles):
                    changed += int(await redis.lrem(key, 0, item))  # type: ignore[arg-type]
        elif kind == "string":
            value = await redis.get(key)
            if value is not None and _holds(value, needles):
                changed = int(await redis.delete(key))
        touched += 1 if changed else 0
    return touched


def remove_user_rows(blob: bytes, user_id: str) -> bytes | None:
    """The numpy archive without `user_id`'s rows (`user_ids` and every array keyed by user
    along its first axis); None when the archive does not hold the user."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    if "user_ids" not in arrays:
        return None
    users = arrays["user_ids"].astype(str)
    keep = users != user_id
    if keep.all():
        return None
    for name, array in list(arrays.items()):
        if "user" in name and array.ndim >= 1 and array.shape[0] == users.shape[0]:
            arrays[name] = array[keep]
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


async def scrub_model_artifacts(db: Database, ids: Identifiers) -> dict[str, str]:
    """Remove the user from every stored numpy-archive model; {name@version: what}."""
    done: dict[str, str] = {}
    async with db.transaction() as conn:
        rows = await fetch_all_in(conn, read_sql(_PACKAGE, "npz_artifacts.sql"))
        for row in rows:
            scrubbed = remove_user_rows(bytes(row["artifact"]), ids.user_id)
            if scrubbed is None:
                continue
            await conn.execute(
                read_sql(_PACKAGE, "npz_artifact_replace.sql"),
                {"artifact": scrubbed, "id": row["id"]},
            )
            done[f"{row['name']}@{row['version']}"] = "user rows removed"
    return done


async def _erase_table(conn: AsyncConnection[Any], rows: TableRows) -> dict[str, int]:
    out: dict[str, int] = {}
    deleting = rows.delete()
    if deleting is not None:
        cur = await conn.execute(*deleting)
        if cur.rowcount:
            out["deleted"] = cur.rowcount
    # What is left carrying the user's id as an attribute belongs to another user: that row
    # stays, the erased user's identifier in it goes (their id claimed on another's event).
    detached = 0
    for statement in rows.detach():
        detached += (await conn.execute(*statement)).rowcount
    if detached:
        out["detached"] = detached
    anonymised = 0
    for statement in rows.anonymise():
        anonymised += (await conn.execute(*statement)).rowcount
    if anonymised:
        out["anonymised"] = anonymised
    return out


async def erase_rows(
    db: Database, ids: Identifiers, request_id: int, *, redis_keys: int, models: dict[str, str]
) -> dict[str, dict[str, int]]:
    """The database step, one transaction: every personal table, then the request done."""
    counts: dict[str, dict[str, int]] = {}
    async with db.transaction() as conn:
        # The only change the audit trail's trigger lets through: blanking identities.
        await conn.execute(read_sql(_PACKAGE, "audit_redaction_on.sql"))
        # Marked done first: its own user_id is then no longer a row to blank.
        await conn.execute(
            read_sql(_PACKAGE, "erasure_finish.sql"),
            {
                "id": request_id,
                "counts": "{}",
                "redis_keys": redis_keys,
                "models": orjson.dumps(models).decode(),
            },
        )
        # The user's signed ids stop proving anything before their links go (a revoked
        # id never links or renews again; tracking/signed_ids.py).
        await conn.execute(
            read_sql(_PACKAGE, "revoke_signed_ids.sql"),
            {"user_id": ids.user_id},
        )
        # The user's rows, as the export reads them (user_rows.py). The users row last:
        # tables without a cascading reference to it go first.
        selections = sorted(await user_rows(conn, ids), key=lambda s: s.table == USERS_TABLE)
        for selection in selections:
            result = await _erase_table(conn, selection)
            if result:
                counts[selection.table] = result
        await conn.execute(
            read_sql(_PACKAGE, "erasure_counts.sql"),
            {"counts": orjson.dumps(counts).decode(), "id": request_id},
        )
        await record_audit(
            conn,
            "privacy.erasure_done",
            actor_role="system",
            target=("erasure_request", request_id),
            details={"tables": len(counts), "redis_keys": redis_keys, "models": models},
        )
    return counts


async def resume_pending_erasures(
    db: Database,
    redis: RedisClient,
    cipher: FieldCipher,
    *,
    prefix: str,
    older_than: str = "5 minutes",
) -> list[int]:
    """Finish the requests a crashed run left pending (their job may be stuck `doing`)."""
    async with db.transaction() as conn:
        rows = await fetch_all_in(
            conn, read_sql(_PACKAGE, "erasure_pending.sql"), {"older_than": older_than}
        )
    finished = []
    for row in rows:
        status = await erase(db, redis, cipher, int(row["id"]), prefix=prefix)
        if status is not None and status["status"] == "done":
            finished.append(int(row["id"]))
    return finished
