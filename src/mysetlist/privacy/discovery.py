"""Where personal data lives, read from the database catalogue (no list to keep up to date).

A column is personal when it references `app.users` (a user id) or when its comment says
`personal: <kind>[; erase: <action>]` (see privacy/migrations/0001_personal_data.sql).
Export, erasure and the tests all start from `personal_columns`; a table added tomorrow
with a `user_id` referencing `app.users` is exported and erased the day it lands.

`undeclared_suspects` is the safety net: columns whose name or type says "person" (user,
anonymous, session, email, actor, recipient, ip, ...) that declare nothing. The discovery
test fails while any exists; a column that only looks personal says `personal: none`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from mysetlist.core.db import fetch_all_in, read_sql

_PACKAGE = "mysetlist.privacy"

Kind = Literal[
    "user_id",
    "claimed_user_id",
    "anonymous_id",
    "session_id",
    "email_hash",
    "ip",
    "contact",
    "model_user_ids",
    "none",
]
Erase = Literal["delete", "nullify", "keep", "scrub"]
KINDS: frozenset[str] = frozenset(Kind.__args__)  # type: ignore[attr-defined]
ERASE_ACTIONS: frozenset[str] = frozenset(Erase.__args__)  # type: ignore[attr-defined]
# Kinds that find a person's rows (the others are personal content found through them).
IDENTIFYING = frozenset({"user_id", "claimed_user_id", "anonymous_id", "session_id", "email_hash"})
# Kinds that are an attribute of their row, not its owner: a row whose owner column (a
# `user_id` column erased by `delete`) names another user belongs to that user, whatever
# ids or claims it carries. Such a row is neither exported nor deleted for the user; erasure
# blanks the user's identifier in it. Only proven ids (identity links) and the user's own
# id count as the user's identifiers; an id merely seen on the user's events does not.
ATTRIBUTE_KINDS = frozenset({"claimed_user_id", "anonymous_id", "session_id"})

_DECLARATION = re.compile(
    r"personal:\s*(?P<kind>[a-z_]+)(?:\s*;\s*erase:\s*(?P<erase>[a-z_]+))?", re.IGNORECASE
)
_SUSPECT_NAME = re.compile(
    r"(^|_)(user|users|anonymous|anon|session|email|e_mail|actor|caller|recipient|subscriber"
    r"|ip|address|phone|device|endpoint|subscription)(_|$)|_by$|^sub$"
)
_SUSPECT_TYPES = ("uuid", "text", "character varying", "bytea", "inet", "jsonb", "citext")
# The job queue's and the migration tool's own tables hold no data about users.
_FOREIGN_TABLES = re.compile(r"^(procrastinate_|_yoyo_|yoyo_)")


class DeclarationError(ValueError):
    """A `personal:` comment that names an unknown kind or erase action."""


@dataclass(frozen=True)
class PersonalColumn:
    schema: str
    table: str
    column: str
    data_type: str
    kind: str
    erase: str
    not_null: bool = False

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"


def parse_declaration(comment: str | None) -> tuple[str, str] | None:
    """(kind, erase) from a column comment, None when it declares nothing."""
    if not comment:
        return None
    match = _DECLARATION.search(comment)
    if match is None:
        return None
    kind = match["kind"].lower()
    erase = (match["erase"] or "delete").lower()
    if kind not in KINDS:
        raise DeclarationError(f"unknown personal-data kind {kind!r} in comment {comment!r}")
    if erase not in ERASE_ACTIONS:
        raise DeclarationError(f"unknown erase action {erase!r} in comment {comment!r}")
    return kind, erase


async def _catalogue(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
    return [
        row
        for row in await fetch_all_in(conn, read_sql(_PACKAGE, "personal_columns.sql"))
        if not (row["schema"] == "public" and _FOREIGN_TABLES.match(row["table_name"]))
    ]


def _declared(row: dict[str, Any]) -> PersonalColumn | None:
    parsed = parse_declaration(row["comment"])
    if parsed is None and row["references_users"]:
        parsed = ("user_id", "delete")
    if parsed is None:
        return None
    kind, erase = parsed
    return PersonalColumn(
        row["schema"], row["table_name"], row["column_name"], row["data_type"], kind, erase,
        not_null=row["not_null"],
    )  # fmt: skip


async def personal_columns(conn: AsyncConnection[Any]) -> list[PersonalColumn]:
    """Every declared personal column (kind `none` excluded), in catalogue order."""
    found = [_declared(row) for row in await _catalogue(conn)]
    return [col for col in found if col is not None and col.kind != "none"]


async def undeclared_suspects(conn: AsyncConnection[Any]) -> list[str]:
    """`schema.table.column` of columns that look personal and declare nothing."""
    out = []
    for row in await _catalogue(conn):
        if _declared(row) is not None:
            continue
        base_type = row["data_type"].split("(")[0].removesuffix("[]")
        if base_type == "inet" or (
            base_type in _SUSPECT_TYPES and _SUSPECT_NAME.search(row["column_name"])
        ):
            out.append(f"{row['schema']}.{row['table_name']}.{row['column_name']}")
    return out


def tables_of(columns: list[PersonalColumn]) -> dict[str, list[PersonalColumn]]:
    """The declared columns grouped by table, tables in catalogue order."""
    grouped: dict[str, list[PersonalColumn]] = {}
    for col in columns:
        grouped.setdefault(col.qualified_table, []).append(col)
    return grouped
