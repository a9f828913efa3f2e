"""GDPR export: everything held about a user as a ZIP of JSON Lines, one file per table
(`<schema>.<table>.jsonl`), and `manifest.json` last (tables, row counts, when).

Streamed end to end: rows come from a server-side cursor a batch at a time and the ZIP is
written as they arrive (stream-zip), so a user with millions of events costs a few batches
of memory. The tables are the ones `discovery.personal_columns` finds, read in one
repeatable-read snapshot. Read as the owner role: some tables about the user (identity
links) are not readable by the user's own database role, and the export must include them.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from stream_zip import ZIP_64, async_stream_zip

from mysetlist.core.db import Database, fetch_one_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.privacy.discovery import personal_columns, tables_of
from mysetlist.privacy.erasure import Identifiers, row_finders, users_rows

_PACKAGE = "mysetlist.privacy"
_CHUNK = 64 * 1024
_FILE_MODE = 0o600


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    raise TypeError(f"cannot export {type(value).__name__}")


async def _identifiers(conn: AsyncConnection[Any], user_id: str) -> Identifiers:
    row = await fetch_one_in(conn, read_sql(_PACKAGE, "user_identifiers.sql"), {"user_id": user_id})
    assert row is not None
    return Identifiers(
        user_id=user_id,
        linked_ids=sorted(set(row["linked_ids"] or [])),
        email_hash=bytes(row["email_hash"]) if row["email_hash"] is not None else None,
    )


def _query(table: str, where: sql.Composed) -> sql.Composed:
    schema, name = table.split(".", 1)
    return sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(schema, name), where)


async def export_archive(db: Database, cipher: FieldCipher, user_id: str) -> AsyncIterator[bytes]:
    """The ZIP's bytes, as they are produced."""
    started = datetime.now(UTC)

    async def rows_of(
        conn: AsyncConnection[Any], table: str, query: sql.Composed, params: list[Any],
        counts: dict[str, int],
    ) -> AsyncIterator[bytes]:  # fmt: skip
        buf = bytearray()
        counts[table] = 0
        async with conn.cursor(name=f"export_{counts.__len__()}", row_factory=dict_row) as cur:
            await cur.execute(query, params)
            async for row in cur:
                if table == "app.users" and row.get("email_encrypted") is not None:
                    row["email"] = cipher.decrypt(
                        bytes(row.pop("email_encrypted")), context=b"users.email"
                    )
                buf += orjson.dumps(row, default=_json_default) + b"\n"
                counts[table] += 1
                if len(buf) >= _CHUNK:
                    yield bytes(buf)
                    buf.clear()
        if buf:
            yield bytes(buf)

    async def one(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def members() -> AsyncIterator[tuple[str, datetime, int, Any, AsyncIterator[bytes]]]:
        counts: dict[str, int] = {}
        # The rows erasure would take, with those RLS cannot attribute to the user (owned
        # by nobody, carrying ids and claims the user proved): the owner reads them.
        reason = "why: the export takes rows RLS cannot attribute to the fan"
        async with db.as_owner(reason) as conn:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            ids = await _identifiers(conn, user_id)
            tables = tables_of(await personal_columns(conn))
            for table, columns in tables.items():
                # The rows erasure would take for the user: owned by the user, or carrying
                # the user's proven ids or claims and owned by nobody else.
                finders = row_finders(columns, ids)
                if not finders:
                    continue
                query = _query(table, users_rows(columns, finders))
                params = [v for _, v in finders]
                yield (
                    f"{table}.jsonl", started, _FILE_MODE, ZIP_64,
                    rows_of(conn, table, query, params, counts),
                )  # fmt: skip
        manifest = {
            "user_id": user_id,
            "generated_at": started.isoformat(),
            "format": "one JSON object per line, one file per table",
            "files": [
                {"file": f"{table}.jsonl", "table": table, "rows": n} for table, n in counts.items()
            ],
        }
        yield (
            "manifest.json", started, _FILE_MODE, ZIP_64,
            one(orjson.dumps(manifest, option=orjson.OPT_INDENT_2)),
        )  # fmt: skip

    async for chunk in async_stream_zip(members()):
        yield chunk
