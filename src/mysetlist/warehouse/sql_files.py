"""The warehouse's SQL files: a step's statements (`warehouse/sql/<step>.sql`) and the run
mechanics' single statements (`warehouse/<name>.sql`).

A file may hold several statements; `core.db.read_sql_statements` splits them (sqlparse).
"""

from __future__ import annotations

from functools import cache

import sqlparse

from mysetlist.core.db import read_sql, read_sql_statements

SQL_PACKAGE = "mysetlist.warehouse.sql"  # one file per step
RUN_SQL_PACKAGE = "mysetlist.warehouse"  # the run mechanics' statements, beside their code


def query(name: str) -> str:
    """The statement in <name>.sql beside the warehouse's modules."""
    return read_sql(RUN_SQL_PACKAGE, f"{name}.sql")


def run_statements(name: str) -> tuple[str, ...]:
    """The statements of <name>.sql beside the warehouse's modules, parsed once."""
    return read_sql_statements(RUN_SQL_PACKAGE, f"{name}.sql")


@cache
def statements(name: str) -> tuple[str, ...]:
    """The statements of sql/<name>.sql, parsed once."""
    return read_sql_statements(SQL_PACKAGE, f"{name}.sql")


@cache
def writes_rows(statement: str) -> bool:
    """INSERT or UPDATE (possibly after a WITH): the statements whose row counts are the
    rows a step wrote; DELETEs and temp tables are not counted."""
    kind = sqlparse.parse(statement)[0].get_type()  # type: ignore[no-untyped-call]
    return kind in ("INSERT", "UPDATE")
