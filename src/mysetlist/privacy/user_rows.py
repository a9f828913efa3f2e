"""The rows of one user: the single definition that export reads and erasure deletes or
blanks, so an export and an erasure cannot disagree about whose a row is.

Per table that `discovery.personal_columns` finds:

- **Finders** are its identifying columns (`IDENTIFYING`) erased by `delete` or `nullify`,
  each with the user's values for it (`Identifiers.values_for`). Only proven identifiers
  count: the user's id, the ids `analytics.identity_links` ties to the user with proof of
  possession, the email's lookup hash (`user_identifiers.sql`).
- **The user's rows** are those a finder matches. An owner finder (a user id) matches by
  value; an attribute finder (an id or a claim, `ATTRIBUTE_KINDS`) only on rows that no
  owner column gives to someone: a row whose owner column names another user is never the
  user's, whatever it carries.
- The export reads the user's rows (`TableRows.select`). Erasure deletes those a `delete`
  finder matches (`TableRows.delete`) and, on those a `nullify` finder matches, blanks that
  column with the table's non-identifying `nullify` columns (`TableRows.anonymise`, e.g. an
  audit entry's actor and IP). Afterwards no finder matches a row: an export is empty.
- **Mentions** are rows that are not the user's but carry one of the user's ids as an
  attribute (another fan's event claiming the user's id). Never exported (they are the
  other fan's); erasure blanks the user's id in them (`TableRows.detach`).

`keep` and `scrub` columns find nothing: the suppression list's keyed hash stays and is not
exported; model archives are scrubbed by erasure's own step.

The statements are the `user_rows_*.sql` templates, filled with identifiers from the
catalogue through psycopg.sql: the table, its columns and the number of finders differ per
table and are known only at run time, so the predicates cannot be static text.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection, sql

from mysetlist.core.db import fetch_one_in, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.privacy.discovery import (
    ATTRIBUTE_KINDS,
    IDENTIFYING,
    DeclarationError,
    PersonalColumn,
    personal_columns,
    tables_of,
)

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.privacy"
Statement = tuple[sql.Composed, list[Any]]


@dataclass
class Identifiers:
    """What identifies the user in our data (held only while an export or erasure runs)."""

    user_id: str
    # Anonymous and session ids PROVEN to be the user's (analytics.identity_links: a signed
    # token carried with the user's JWT, or a server write key), never ids merely seen on
    # the user's events: anyone can put any id on their own event.
    linked_ids: list[str] = field(default_factory=list)
    email_hash: bytes | None = None
    email: str | None = None

    def values_for(self, kind: str) -> list[Any]:
        if kind in ("user_id", "claimed_user_id"):
            return [self.user_id]
        if kind == "anonymous_id":
            # A browser key's claim without an anonymous id stores the claimed user's id as
            # the event's anonymous id (tracking), so the user's id is looked for here too.
            return [*self.linked_ids, self.user_id]
        if kind == "session_id":
            return list(self.linked_ids)
        if kind == "email_hash":
            return [self.email_hash] if self.email_hash is not None else []
        return []

    def redis_needles(self) -> list[bytes]:
        """Strings to look for in Redis: each identifier, and the hash tracking's rate
        limiter keys an identity by (tracking/rate_limit.py)."""
        plain = [self.user_id, *self.linked_ids]
        if self.email:
            plain.append(self.email.strip().lower())
        needles = {p.encode() for p in plain if p}
        needles |= {
            hashlib.blake2b(p.encode(), digest_size=12).hexdigest().encode() for p in plain if p
        }
        if self.email_hash is not None:
            needles.add(self.email_hash.hex().encode())
        return sorted(needles)


async def identifiers_of(
    conn: AsyncConnection[Any], cipher: FieldCipher, user_id: str
) -> Identifiers:
    """The user's proven identifiers, and their email in clear when it decrypts."""
    row = await fetch_one_in(conn, read_sql(_PACKAGE, "user_identifiers.sql"), {"user_id": user_id})
    assert row is not None
    email = None
    if row["email_encrypted"] is not None:
        try:
            email = cipher.decrypt(bytes(row["email_encrypted"]), context=b"users.email")
        except Exception:  # a value under a lost key: its hash is still matched
            log.warning("the user's email does not decrypt; matching its hash only")
    return Identifiers(
        user_id=user_id,
        linked_ids=sorted(set(row["linked_ids"] or [])),
        email_hash=bytes(row["email_hash"]) if row["email_hash"] is not None else None,
        email=email,
    )


def _template(name: str) -> sql.SQL:
    return sql.SQL(read_sql(_PACKAGE, name))  # type: ignore[arg-type]


# A NOT NULL column cannot be blanked: it gets a tombstone that identifies nobody.
_TOMBSTONES = {"uuid": "'00000000-0000-0000-0000-000000000000'::uuid", "text": "'erased'"}


def _blank(col: PersonalColumn) -> sql.SQL:
    if not col.not_null:
        return sql.SQL("NULL")
    tombstone = _TOMBSTONES.get(col.data_type)
    if tombstone is None:
        raise DeclarationError(
            f"{col.qualified_table}.{col.column} is NOT NULL: declare erase: delete"
        )
    return sql.SQL(tombstone)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Finder:
    """A column that finds the user's rows, with the user's values for it."""

    column: PersonalColumn
    values: list[Any]

    @property
    def is_attribute(self) -> bool:
        return self.column.kind in ATTRIBUTE_KINDS

    def holds_value(self) -> sql.Composed:
        """'the column holds one of the user's values' (one placeholder)."""
        return sql.SQL("{} = ANY({}::{})").format(
            sql.Identifier(self.column.column),
            sql.Placeholder(),
            sql.SQL(self.column.data_type + "[]"),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class TableRows:
    """One table's selection of the user's rows, and how erasure treats them."""

    table: str
    columns: tuple[PersonalColumn, ...]
    finders: tuple[Finder, ...]

    @property
    def target(self) -> sql.Identifier:
        schema, name = self.table.split(".", 1)
        return sql.Identifier(schema, name)

    @property
    def owners(self) -> list[PersonalColumn]:
        """The columns that say whose a row is (a user id erased with its row)."""
        return [c for c in self.columns if c.kind == "user_id" and c.erase == "delete"]

    def _matches(self, finder: Finder) -> sql.Composed:
        """'the finder makes the row the user's': an attribute only on unowned rows."""
        if not finder.is_attribute:
            return sql.SQL("({})").format(finder.holds_value())
        unowned = sql.SQL("").join(
            sql.SQL(" AND {} IS NULL").format(sql.Identifier(o.column)) for o in self.owners
        )
        return sql.SQL("({}{})").format(finder.holds_value(), unowned)

    def _users_rows(self, finders: list[Finder]) -> Statement:
        where = sql.SQL(" OR ").join(self._matches(f) for f in finders)
        return where, [f.values for f in finders]

    def _statement(self, template: str, **parts: sql.Composable) -> sql.Composed:
        return _template(template).format(table=self.target, **parts)

    def select(self) -> Statement:
        """Every row of the user's in this table (the export's)."""
        where, params = self._users_rows(list(self.finders))
        return self._statement("user_rows_select.sql", users_rows=where), params

    def delete(self) -> Statement | None:
        """Delete the user's rows that a `delete` finder matches."""
        deleting = [f for f in self.finders if f.column.erase == "delete"]
        if not deleting:
            return None
        where, params = self._users_rows(deleting)
        return self._statement("user_rows_delete.sql", users_rows=where), params

    def detach(self) -> list[Statement]:
        """Blank the user's id in rows that carry it as an attribute and have an owner (a
        NOT NULL attribute column stays: its row cannot lose it). Run after `delete`: the
        user's own rows are gone, so the owner is another user."""
        owned = sql.SQL(" OR ").join(
            sql.SQL("{} IS NOT NULL").format(sql.Identifier(o.column)) for o in self.owners
        )
        out = []
        for finder in self.finders:
            if not finder.is_attribute or finder.column.erase != "delete":
                continue
            if finder.column.not_null or not self.owners:
                continue
            others = sql.SQL("{} AND ({})").format(finder.holds_value(), owned)
            blanks = sql.SQL("{} = NULL").format(sql.Identifier(finder.column.column))
            statement = self._statement("user_rows_blank.sql", blanks=blanks, rows=others)
            out.append((statement, [finder.values]))
        return out

    def anonymise(self) -> list[Statement]:
        """Blank, on the user's rows a `nullify` finder matches, that column and the table's
        non-identifying `nullify` columns (e.g. an audit entry's IP)."""
        companions = [c for c in self.columns if c.kind not in IDENTIFYING and c.erase == "nullify"]
        out = []
        for finder in self.finders:
            if finder.column.erase != "nullify":
                continue
            blanks = sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c.column), _blank(c))
                for c in [finder.column, *companions]
            )
            rows, params = self._users_rows([finder])
            out.append((self._statement("user_rows_blank.sql", blanks=blanks, rows=rows), params))
        return out


def table_rows(table: str, columns: list[PersonalColumn], ids: Identifiers) -> TableRows:
    finders = tuple(
        Finder(col, values)
        for col in columns
        if col.kind in IDENTIFYING and col.erase in ("delete", "nullify")
        for values in [ids.values_for(col.kind)]
        if values
    )
    return TableRows(table, tuple(columns), finders)


async def user_rows(conn: AsyncConnection[Any], ids: Identifiers) -> list[TableRows]:
    """Per personal table that can hold the user's rows (a finder with values), in
    catalogue order: the selection export reads and erasure acts on."""
    tables = tables_of(await personal_columns(conn))
    selections = [table_rows(table, columns, ids) for table, columns in tables.items()]
    return [s for s in selections if s.finders]
