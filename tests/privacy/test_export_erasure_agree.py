"""Export and erasure agree on whose a row is (issue 16 item 10): on a seeded world, the
rows an export returns for a user are exactly the rows erasure deletes or blanks, besides
the rows of other fans that only carry the user's id (erasure blanks the id there, the
export leaves those rows out); and an export after the erasure holds nothing."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections import Counter
from typing import Any

import orjson
import pytest
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.runtime import Runtime
from mysetlist.privacy.discovery import personal_columns, tables_of
from mysetlist.privacy.erasure import erase, request_erasure
from mysetlist.privacy.export import export_archive, export_line, json_as_stored
from tests.privacy.seeding import new_user, redis_prefix, seed_catalog, seed_user_everywhere

pytestmark = pytest.mark.db
Lines = dict[str, Counter[bytes]]

_EVENT = (
    "INSERT INTO analytics.user_events (event_id, message_id, user_id, claimed_user_id,"
    " anonymous_id, event_type, created_at, received_at, source)"
    " VALUES (gen_random_uuid(), %s, %s, %s, %s, 'page_view', now(), now(), 'own')"
)


async def _every_personal_row(conn: AsyncConnection[Any], cipher: FieldCipher) -> Lines:
    """Every row of every personal table, each as its export line."""
    out: Lines = {}
    for table in tables_of(await personal_columns(conn)):
        schema, name = table.split(".", 1)
        async with conn.cursor(row_factory=dict_row) as cur:
            json_as_stored(cur)  # read as the export reads
            await cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, name)))
            out[table] = Counter(export_line(cipher, table, row) for row in await cur.fetchall())
    return out


async def _export(runtime: Runtime, user_id: str) -> tuple[Lines, dict[str, int]]:
    """The export's lines per table, and its manifest's row counts."""
    archive = zipfile.ZipFile(
        io.BytesIO(b"".join([c async for c in export_archive(runtime.db, runtime.cipher, user_id)]))
    )
    manifest = orjson.loads(archive.read("manifest.json"))
    lines = {
        f["table"]: Counter(archive.read(f["file"]).splitlines(keepends=True))
        for f in manifest["files"]
    }
    return lines, {f["table"]: f["rows"] for f in manifest["files"]}


async def test_erasure_takes_exactly_the_rows_the_export_returns(runtime: Runtime) -> None:
    user, other = new_user(runtime.cipher), new_user(runtime.cipher)
    unowned_claim, others_claim = f"m-{uuid.uuid4().hex}", f"m-{uuid.uuid4().hex}"
    async with runtime.db.transaction() as conn:
        await seed_catalog(conn)
        await seed_user_everywhere(conn, runtime.cipher, user)
        await seed_user_everywhere(conn, runtime.cipher, other)
        # A browser-key event claiming the user and owned by nobody: the user's row.
        await conn.execute(_EVENT, (unowned_claim, None, user.user_id, "anon-x"))
        # Another fan's own event claiming the user: the other fan's row, not the user's.
        await conn.execute(_EVENT, (others_claim, other.user_id, user.user_id, other.anonymous_id))
    request_id, _ = await request_erasure(
        runtime.db, user.user_id, requested_by=user.user_id, requested_by_role="authenticated",
        source="self", revocations=runtime.revocations,
    )  # fmt: skip

    async with runtime.db.transaction() as conn:
        before = await _every_personal_row(conn, runtime.cipher)
        async with conn.cursor(row_factory=dict_row) as cur:
            json_as_stored(cur)
            await cur.execute(
                "SELECT * FROM analytics.user_events WHERE message_id = %s", (others_claim,)
            )
            mention = await cur.fetchone()
    assert mention is not None
    exported, _ = await _export(runtime, user.user_id)
    status = await erase(
        runtime.db, runtime.redis, runtime.cipher, request_id, prefix=redis_prefix()
    )
    assert status is not None
    assert status["status"] == "done"
    async with runtime.db.transaction() as conn:
        after = await _every_personal_row(conn, runtime.cipher)

    # Not vacuous: the export holds the user's rows of many tables, the claims among them.
    exported = {t: lines for t, lines in exported.items() if lines}
    assert {"app.users", "analytics.user_events", "analytics.identity_links",
            "analytics.audit_log", "privacy.erasure_requests", "notify.notifications"} <= set(
        exported
    )  # fmt: skip
    events = [orjson.loads(line) for line in exported["analytics.user_events"]]
    assert unowned_claim in {e["message_id"] for e in events}
    assert others_claim not in {e["message_id"] for e in events}

    # What erasure deleted or changed, per table (rows it added, e.g. its audit entry, aside).
    taken = {t: before[t] - after.get(t, Counter()) for t in before}
    taken = {t: lines for t, lines in taken.items() if lines}
    mentioned = export_line(runtime.cipher, "analytics.user_events", mention)
    expected = {**exported}
    expected["analytics.user_events"] = exported["analytics.user_events"] + Counter([mentioned])
    assert taken == expected
    # The other fan's row stays theirs, without the user's id.
    kept = await runtime.db.fetch_one(
        "SELECT user_id::text, claimed_user_id FROM analytics.user_events WHERE message_id = %s",
        (others_claim,),
    )
    assert kept == {"user_id": other.user_id, "claimed_user_id": None}
    assert status["counts"]["analytics.user_events"]["detached"] == 1

    # Afterwards nothing is the user's: every file of a new export is empty.
    again, rows = await _export(runtime, user.user_id)
    assert rows
    assert set(rows.values()) == {0}
    assert not any(again.values())
