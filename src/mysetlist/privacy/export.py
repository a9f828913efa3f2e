"""GDPR export: everything held about a user as a ZIP of JSON Lines, one file per table
(`<schema>.<table>.jsonl`), and `manifest.json` last (tables, row counts, when).

Streamed end to end: rows come from a server-side cursor a batch at a time and the ZIP is
written as they arrive (stream-zip), so a user with millions of events costs a few batches
of memory. The rows are the user's as `user_rows.py` defines them (the selection erasure
deletes or blanks), read in one repeatable-read snapshot. Read as the owner role: some
tables about the user (identity links) are not readable by the user's own database role,
and the export must include them.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from stream_zip import ZIP_64, async_stream_zip

from mysetlist.core.db import Database, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.privacy.user_rows import identifiers_of, user_rows

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


def json_as_stored(cursor: AsyncCursor[Any]) -> None:
    """JSON columns read on `cursor` come back as the text PostgreSQL stores, for
    `export_line` to write as they are: parsed, an integer past 64 bits (accepted by an
    endpoint that parses with the standard library) would stop orjson mid-archive. On the
    cursor only; the pooled connection is untouched."""
    set_json_loads(orjson.Fragment, cursor)


def export_line(cipher: FieldCipher, table: str, row: dict[str, Any]) -> bytes:
    """One row as its line in `<table>.jsonl` (the user's email decrypted for its owner)."""
    if table == "app.users" and row.get("email_encrypted") is not None:
        row = dict(row)
        row["email"] = cipher.decrypt(bytes(row.pop("email_encrypted")), context=b"users.email")
    return orjson.dumps(row, default=_json_default) + b"\n"


async def export_archive(db: Database, cipher: FieldCipher, user_id: str) -> AsyncIterator[bytes]:
    """The ZIP's bytes, as they are produced."""
    started = datetime.now(UTC)

    async def rows_of(
        conn: AsyncConnection[Any], table: str, query: sql.Composed, params: list[Any],
        counts: dict[str, int],
    ) -> AsyncIterator[bytes]:  # fmt: skip
        buf = bytearray()
        counts[table] = 0
        async with conn.cursor(name=f"export_{len(counts)}", row_factory=dict_row) as cur:
            json_as_stored(cur)
            await cur.execute(query, params)
            async for row in cur:
                buf += export_line(cipher, table, row)
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
            await conn.execute(read_sql(_PACKAGE, "export_snapshot.sql"))
            ids = await identifiers_of(conn, cipher, user_id)
            # The rows erasure would take for the user (user_rows.py: one definition).
            for selection in await user_rows(conn, ids):
                query, params = selection.select()
                yield (
                    f"{selection.table}.jsonl", started, _FILE_MODE, ZIP_64,
                    rows_of(conn, selection.table, query, params, counts),
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
