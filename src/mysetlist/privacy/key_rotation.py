"""Re-encrypt every encrypted column under the keyring's newest key, online and resumably.

Encrypted columns are found by their comment (`encrypted: <context>`). Each column is
walked in key order, a batch per transaction; a value already under the newest key is
skipped, so a rotation that stopped half-way resumes where it left off by running again.
A value is replaced only if it still holds what was read (a concurrent write, made under
the newest key anyway, wins). The run is recorded in the audit trail with its counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from mysetlist.core.audit import record_audit
from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.field_encryption import FieldCipher

_PACKAGE = "mysetlist.privacy"
Progress = Callable[[str, int, int], None]  # column, done, total


@dataclass(frozen=True)
class EncryptedColumn:
    schema: str
    table: str
    column: str
    context: str
    key_column: str

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"


@dataclass
class RotationResult:
    key_id: str
    rewritten: dict[str, int] = field(default_factory=dict)
    undecryptable: dict[str, int] = field(default_factory=dict)


async def encrypted_columns(conn: AsyncConnection[Any]) -> list[EncryptedColumn]:
    out = []
    for row in await fetch_all_in(conn, read_sql(_PACKAGE, "encrypted_columns.sql")):
        keys = row["key_columns"] or []
        if len(keys) != 1:
            raise ValueError(
                f"{row['schema']}.{row['table_name']}: key rotation needs a one-column primary key"
            )
        out.append(
            EncryptedColumn(
                row["schema"], row["table_name"], row["column_name"], row["context"], keys[0]
            )
        )
    return out


def _statement(name: str, col: EncryptedColumn) -> sql.Composed:
    """The .sql template `name` for `col` (table, key and column come from the catalogue,
    so they are filled in as identifiers at run time)."""
    template = sql.SQL(read_sql(_PACKAGE, name))  # type: ignore[arg-type]
    return template.format(
        table=sql.Identifier(col.schema, col.table),
        key=sql.Identifier(col.key_column),
        value=sql.Identifier(col.column),
    )


async def rotate_keys(
    db: Database,
    cipher: FieldCipher,
    *,
    batch_size: int = 500,
    progress: Progress | None = None,
    actor_role: str = "cli",
) -> RotationResult:
    header = b"\x02" + cipher.key_id
    result = RotationResult(key_id=cipher.key_id.hex())
    async with db.transaction() as conn:
        columns = await encrypted_columns(conn)
    for col in columns:
        async with db.transaction() as conn:
            counted = await fetch_one_in(
                conn, _statement("key_rotation_count_stale.sql", col), {"header": header}
            )
        total = int(counted["n"]) if counted else 0
        done = skipped = 0
        after: Any = None
        select = _statement("key_rotation_stale_batch.sql", col)
        update = _statement("key_rotation_rewrite.sql", col)
        while True:
            async with db.transaction() as conn:
                rows = await fetch_all_in(
                    conn,
                    select,
                    {"header": header, "after": None if after is None else str(after),
                     "after_value": after, "limit": batch_size},
                )  # fmt: skip
                if not rows:
                    break
                changes = []
                for row in rows:
                    old = bytes(row["value"])
                    try:
                        plain = cipher.decrypt(old, context=col.context.encode())
                    except Exception:
                        skipped += 1  # under a key no longer in the ring: left, counted
                        continue
                    new = cipher.encrypt(plain, context=col.context.encode())
                    changes.append({"new": new, "key": row["key"], "old": old})
                async with conn.cursor() as cur:
                    await cur.executemany(update, changes)
                after = rows[-1]["key"]
            done += len(rows)
            if progress is not None:
                progress(col.name, min(done, total), total)
        result.rewritten[col.name] = done - skipped
        if skipped:
            result.undecryptable[col.name] = skipped
    async with db.transaction() as conn:
        await record_audit(
            conn,
            "privacy.key_rotation",
            outcome="failure" if result.undecryptable else "success",
            actor_role=actor_role,
            details={"key_id": result.key_id, "rewritten": result.rewritten,
                     "undecryptable": result.undecryptable},
        )  # fmt: skip
    return result
