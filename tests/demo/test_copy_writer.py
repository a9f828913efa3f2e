"""Binary COPY from numpy arrays round-trips every supported type."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg
import pytest

from mysetlist.demo.copy_writer import Column, copy_columns

pytestmark = pytest.mark.db


def test_binary_copy_round_trips_each_type(scratch_url: str) -> None:
    ids = [uuid.UUID(int=7), uuid.UUID("0190a7b2-1c2d-7e3f-8a4b-5c6d7e8f9a0b")]
    at = [datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC), datetime(1999, 12, 31, tzinfo=UTC)]
    with psycopg.connect(scratch_url) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copied (a smallint, b integer, c bigint, d real,"
            " e double precision, f boolean, g timestamptz, h uuid, i text)"
        )
        batch = [
            Column("a", "int2", np.array([-3, 32767], dtype=np.int16)),
            Column("b", "int4", np.array([1, -2_000_000_000], dtype=np.int32)),
            Column("c", "int8", np.array([2**40, -1], dtype=np.int64)),
            Column("d", "float4", np.array([0.5, -1.25], dtype=np.float32)),
            Column("e", "float8", np.array([1e-300, 3.5])),
            Column("f", "bool", np.array([True, False])),
            Column("g", "timestamptz", np.array([int(t.timestamp() * 1e6) for t in at])),
            Column(
                "h", "uuid", np.frombuffer(b"".join(u.bytes for u in ids), np.uint8).reshape(2, 16)
            ),
            Column("i", "text", "r&b ✓"),
        ]
        assert copy_columns(cur, "copied", [batch, batch[:]]) == 4
        rows = cur.execute("SELECT * FROM copied").fetchall()
    assert rows[0] == (-3, 1, 2**40, 0.5, 1e-300, True, at[0], ids[0], "r&b ✓")
    assert rows[1] == (32767, -2_000_000_000, -1, -1.25, 3.5, False, at[1], ids[1], "r&b ✓")
    assert rows[2:] == rows[:2]


def test_columns_of_different_lengths_are_refused(scratch_url: str) -> None:
    with psycopg.connect(scratch_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE two (a bigint, b bigint)")
        batch = [Column("a", "int8", np.arange(3)), Column("b", "int8", np.arange(2))]
        with pytest.raises(ValueError, match="differ in length"):
            copy_columns(cur, "two", [batch])
