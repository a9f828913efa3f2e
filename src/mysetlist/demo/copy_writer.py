"""PostgreSQL binary COPY straight from numpy arrays (no per-row Python).

Every column here is fixed-width, so a whole batch of rows is one numpy structured array
laid out exactly as COPY's binary format wants it (field count, then length + big-endian
value per field), written to the server with one `copy.write`. Text columns are supported
only as a constant per batch (e.g. one genre name), which keeps every row the same width.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql

from mysetlist.core.db import read_sql

PgType = Literal["int2", "int4", "int8", "float4", "float8", "bool", "timestamptz", "uuid", "text"]

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
# timestamptz travels as microseconds since 2000-01-01 UTC; we keep Unix microseconds.
_PG_EPOCH_OFFSET_US = 946_684_800_000_000

_NUMPY_TYPES: dict[str, str] = {
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "bool": "u1",
    "timestamptz": ">i8",
    "uuid": "V16",
}


@dataclass(frozen=True)
class Column:
    """One column of a COPY batch.

    `values` is an array of n rows; for `timestamptz` it holds Unix microseconds (int64),
    for `uuid` 16 raw bytes per row (shape (n, 16) uint8 or dtype V16), and for `text` it
    is a single `str` shared by every row of the batch.
    """

    name: str
    pg_type: PgType
    values: NDArray[Any] | str


def _field_dtype(column: Column) -> str:
    if column.pg_type == "text":
        assert isinstance(column.values, str)
        return f"S{len(column.values.encode())}"
    return _NUMPY_TYPES[column.pg_type]


def _field_values(column: Column) -> Any:
    values = column.values
    if column.pg_type == "text":
        assert isinstance(values, str)
        return values.encode()
    assert isinstance(values, np.ndarray)
    if column.pg_type == "timestamptz":
        return values.astype(np.int64) - _PG_EPOCH_OFFSET_US
    if column.pg_type == "uuid":
        return np.ascontiguousarray(values, dtype=np.uint8).view("V16")[:, 0]
    return values


def encode_rows(columns: Sequence[Column], n_rows: int) -> bytes:
    """The tuples of a binary COPY (no header/trailer) for `n_rows` rows."""
    fields: list[tuple[str, str]] = [("field_count", ">i2")]
    for i, column in enumerate(columns):
        fields += [(f"length_{i}", ">i4"), (f"value_{i}", _field_dtype(column))]
    rows = np.empty(n_rows, dtype=np.dtype(fields))
    rows["field_count"] = len(columns)
    for i, column in enumerate(columns):
        rows[f"length_{i}"] = rows.dtype[f"value_{i}"].itemsize
        rows[f"value_{i}"] = _field_values(column)
    return rows.tobytes()


def table_identifier(table: str) -> sql.Identifier:
    """`table` ("app.follows", or a temp table's bare name) as a quoted identifier."""
    schema, _, name = table.rpartition(".")
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)


def copy_statement(table: str, columns: Sequence[str], *, binary: bool) -> sql.Composed:
    """`COPY table (columns) FROM STDIN`, in binary or text format."""
    template = read_sql(__package__, "copy_binary.sql" if binary else "copy_text.sql")
    return sql.SQL(template).format(  # type: ignore[arg-type]  # our own file
        table=table_identifier(table),
        columns=sql.SQL(", ").join(sql.Identifier(n) for n in columns),
    )


def copy_rows(
    cursor: psycopg.Cursor[Any], table: str, columns: Sequence[str]
) -> AbstractContextManager[psycopg.Copy]:
    """A text COPY into `table`'s `columns`, written a row at a time (`write_row`): for
    the small tables with text of varying width."""
    return cursor.copy(copy_statement(table, columns, binary=False))


def copy_columns(
    cursor: psycopg.Cursor[Any],
    table: str,
    batches: Sequence[Sequence[Column]],
) -> int:
    """COPY every batch (each a list of equally long columns) into `table`; rows written.

    `table` is a schema-qualified name such as "app.follows". All batches must name the
    same columns in the same order.
    """
    if not batches or not batches[0]:
        return 0
    names = [c.name for c in batches[0]]
    written = 0
    with cursor.copy(copy_statement(table, names, binary=True)) as copy:
        copy.write(_HEADER)
        for batch in batches:
            if [c.name for c in batch] != names:
                raise ValueError("every batch must have the same columns")
            n_rows = _batch_length(batch)
            if n_rows:
                copy.write(encode_rows(batch, n_rows))
                written += n_rows
        copy.write(_TRAILER)
    return written


def _batch_length(batch: Sequence[Column]) -> int:
    lengths = {len(c.values) for c in batch if not isinstance(c.values, str)}
    if len(lengths) != 1:
        raise ValueError(f"columns of one batch differ in length: {sorted(lengths)}")
    return lengths.pop()
