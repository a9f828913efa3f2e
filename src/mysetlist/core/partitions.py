"""Range partitions by day or month: create ahead, take in rows parked in the default
partition, list, drop expired. Used by every partitioned table's upkeep
(`analytics.user_events` daily, `analytics.daily_platform_metrics` monthly).

Conventions: the parent has a DEFAULT partition `<parent>_default` that catches rows no
partition covers yet (nothing is ever rejected for lack of a partition), and partition
`<parent>_YYYYMMDD` (day) or `<parent>_YYYYMM` (month) holds [start, next start). Bounds
of a `timestamptz` key are midnight UTC.

Each partition is created in its own short transaction with a `lock_timeout`, so upkeep
never queues behind (and then blocks) the writers for long; it is safe to run again after
a failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from psycopg import AsyncConnection, sql

from mysetlist.core.db import fetch_all_in, read_sql

_PACKAGE = "mysetlist.core"


@dataclass(frozen=True)
class PartitionedTable:
    """A table partitioned by range of `key` (a `date` or `timestamptz` column)."""

    schema: str
    name: str
    key: str
    grain: Literal["day", "month"]
    key_type: Literal["date", "timestamptz"]

    @property
    def parent(self) -> sql.Composable:
        return sql.Identifier(self.schema, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def partition_name(self, start: date) -> str:
        suffix = f"{start:%Y%m%d}" if self.grain == "day" else f"{start:%Y%m}"
        return f"{self.name}_{suffix}"

    def start_of(self, day: date) -> date:
        """The start of the partition that holds `day`."""
        return day if self.grain == "day" else day.replace(day=1)

    def next_start(self, start: date) -> date:
        if self.grain == "day":
            return date.fromordinal(start.toordinal() + 1)
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)

    def bound(self, day: date) -> date | datetime:
        """`day` as a value of the key's type (midnight UTC for timestamps)."""
        return day if self.key_type == "date" else datetime.combine(day, time(), tzinfo=UTC)

    def start_from_name(self, partition: str) -> date | None:
        pattern = r"(\d{8})" if self.grain == "day" else r"(\d{6})"
        match = re.fullmatch(re.escape(self.name) + "_" + pattern, partition)
        if match is None:
            return None
        digits = match.group(1)
        return datetime.strptime(digits if self.grain == "day" else digits + "01", "%Y%m%d").date()


@dataclass(frozen=True)
class Partition:
    name: str
    start: date
    end: date  # exclusive


@dataclass(frozen=True)
class Expired:
    dropped: list[str]
    rows_deleted: int


async def list_partitions(conn: AsyncConnection[Any], table: PartitionedTable) -> list[Partition]:
    """The table's range partitions that follow the naming convention, oldest first."""
    rows = await fetch_all_in(
        conn, read_sql(_PACKAGE, "partition_list.sql"), {"parent": table.qualified_name}
    )
    found = []
    for row in rows:
        start = table.start_from_name(row["name"])
        if start is not None:
            found.append(Partition(row["name"], start, table.next_start(start)))
    return sorted(found, key=lambda p: p.start)


async def ensure_partitions(
    conn: AsyncConnection[Any],
    table: PartitionedTable,
    first: date,
    last: date,
    *,
    lock_timeout: str = "5s",
) -> list[str]:
    """Create the partitions covering days `first`..`last` that do not exist yet, moving
    in the rows the default partition holds for them. Returns the names created."""
    async with conn.transaction():  # also on a connection that is not autocommit
        existing = {p.name for p in await list_partitions(conn, table)}
    created = []
    start = table.start_of(first)
    while start <= last:
        end = table.next_start(start)
        name = table.partition_name(start)
        if name not in existing:
            await _create_partition(conn, table, name, start, end, lock_timeout)
            created.append(name)
        start = end
    return created


async def _create_partition(
    conn: AsyncConnection[Any],
    table: PartitionedTable,
    name: str,
    start: date,
    end: date,
    lock_timeout: str,
) -> None:
    lo, hi = table.bound(start), table.bound(end)
    names = {
        "parent": table.parent,
        "default_partition": sql.Identifier(table.schema, f"{table.name}_default"),
        "partition": sql.Identifier(table.schema, name),
        "key": sql.Identifier(table.key),
        "lo": sql.Literal(lo),
        "hi": sql.Literal(hi),
    }

    def statement(file: str) -> sql.Composed:
        return sql.SQL(read_sql(_PACKAGE, file)).format(**names)

    async with conn.transaction():
        await conn.execute(read_sql(_PACKAGE, "lock_timeout.sql"), (lock_timeout,))
        await conn.execute(statement("partition_move_out.sql"), {"lo": lo, "hi": hi})
        await conn.execute(statement("partition_create.sql"))
        await conn.execute(statement("partition_move_in.sql"))
        await conn.execute(read_sql(_PACKAGE, "partition_rows_drop.sql"))


async def drop_expired(
    conn: AsyncConnection[Any], table: PartitionedTable, cutoff: date, *, lock_timeout: str = "5s"
) -> Expired:
    """Drop the partitions wholly before `cutoff` and delete the older rows left elsewhere
    (default partition, the partition straddling the cutoff). One transaction."""
    dropped = []
    async with conn.transaction():
        await conn.execute(read_sql(_PACKAGE, "lock_timeout.sql"), (lock_timeout,))
        drop = sql.SQL(read_sql(_PACKAGE, "partition_drop.sql"))
        for partition in await list_partitions(conn, table):
            if partition.end <= cutoff:
                await conn.execute(
                    drop.format(partition=sql.Identifier(table.schema, partition.name))
                )
                dropped.append(partition.name)
        query = sql.SQL(read_sql(_PACKAGE, "partition_delete_expired.sql")).format(
            parent=table.parent, key=sql.Identifier(table.key)
        )
        cur = await conn.execute(query, {"cutoff": table.bound(cutoff)})
        deleted = cur.rowcount or 0
    return Expired(dropped, deleted)
