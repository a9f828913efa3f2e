"""The codebase's layout rules (issue 16), checked statically over `src/` (ast, no database).

a. Capabilities meet only through core: a capability package imports `mysetlist.core`,
   itself, and `mysetlist.startup` (only from its `commands.py`); core imports no
   capability. The wiring (`capabilities.py`, `cli.py`, `api.py`, `jobs.py`, `startup.py`,
   `demo/`) may import any of them.
b. SQL lives in `.sql` files read through `core.db.read_sql`: no SQL text in Python, except
   the session setup in `core/db.py` and the few `psycopg.sql` compositions that cannot be
   static (each allowlisted below with its reason).
c. Connections come only from `core/db.py`.
d. Advisory-lock keys come from `core.db.lock_key`: no `hashtext`/`hashtextextended` (but
   the allowlisted checksum), a lock's SQL takes its key as a parameter, and the Python that
   runs it passes `lock_key(...)`.
e. `Problem` (HTTP) belongs to the HTTP layer: route modules, core's HTTP dependencies and
   middleware. Services raise domain errors (`core.errors.DomainError` kinds).

Each failure names `file:line` and what to do instead.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "mysetlist"

CAPABILITIES = frozenset(
    {"tracking", "warehouse", "ml", "notify", "dashboard", "privacy", "platform"}
)
# Assemble the capabilities into a service; they may import any of them.
WIRING = frozenset({"capabilities", "cli", "api", "jobs", "startup", "demo", "__main__"})


@dataclass(frozen=True)
class Source:
    path: Path
    tree: ast.Module

    @property
    def name(self) -> str:
        """The path under src/ (`mysetlist/notify/routes.py`), as failures print it."""
        return self.path.relative_to(SRC).as_posix()

    @property
    def module(self) -> str:
        parts = list(self.path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    @property
    def area(self) -> str:
        """`core`, a capability, or a wiring module, by the first name under mysetlist/."""
        return self.path.relative_to(PACKAGE).with_suffix("").parts[0]

    def at(self, node: ast.AST) -> str:
        return f"{self.name}:{getattr(node, 'lineno', 0)}"


@cache
def sources() -> tuple[Source, ...]:
    return tuple(
        Source(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


def sql_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.sql"))


def enclosing_functions(tree: ast.Module) -> dict[ast.AST, str]:
    """Each node's enclosing `Class.function` (or `<module>`), for allowlists that should
    not break when lines move."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = child.name if scope == "<module>" else f"{scope}.{child.name}"
            owner[child] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


# a. Imports ---------------------------------------------------------------------------


def imported_modules(source: Source) -> Iterator[tuple[ast.AST, str]]:
    """Every module `source` imports (also inside functions and `TYPE_CHECKING`), with
    relative imports resolved; `from mysetlist import x` counts as importing `mysetlist.x`."""
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = source.module.split(".")
                if source.path.name != "__init__.py":
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base == "mysetlist":
                for alias in node.names:
                    yield node, f"mysetlist.{alias.name}"
            else:
                yield node, base


def allowed_imports(source: Source) -> frozenset[str] | None:
    """The parts of mysetlist `source` may import (None: any)."""
    if source.area in CAPABILITIES:
        own = {"core", source.area}
        if source.path.name == "commands.py":
            own.add("startup")  # a command starts the servers the way every command does
        return frozenset(own)
    if source.area == "core":
        # The one list of capabilities (names only): migrations apply in its order.
        return frozenset({"core", "capabilities"})
    return None


def test_capabilities_meet_only_through_core() -> None:
    offenders = []
    for source in sources():
        allowed = allowed_imports(source)
        if allowed is None:
            continue
        for node, module in imported_modules(source):
            parts = module.split(".")
            if parts[0] != "mysetlist" or len(parts) < 2 or parts[1] in allowed:
                continue
            offenders.append(
                f"{source.at(node)}: {source.area} imports {module}; "
                + (
                    "core must not depend on a capability (invert it: the capability "
                    "registers with core, or the wiring passes it in)"
                    if source.area == "core"
                    else "a capability may import only mysetlist.core and itself (meet "
                    "other capabilities through the database, the queue or a core seam)"
                )
            )
    assert not offenders, "imports across capabilities:\n" + "\n".join(sorted(offenders))


# b. Inline SQL --------------------------------------------------------------------------

# What CREATE, ALTER and DROP act on (so "Create the partitions" in a message is prose).
_OBJECTS = (
    r"(TABLE|INDEX|VIEW|MATERIALIZED|SCHEMA|DATABASE|FUNCTION|TRIGGER|ROLE|SEQUENCE|TYPE"
    r"|EXTENSION|POLICY|SYSTEM|DEFAULT)\b"
)
SQL_START = re.compile(
    r"""\s*(
        SELECT\s+\S | INSERT\s+INTO\b | UPDATE\s+[\w."]+\s+SET\b | DELETE\s+FROM\b
      | WITH\s+(RECURSIVE\s+)?\w+\s*(\([^)]*\)\s*)?AS\b
      | CREATE\s+(OR\s+REPLACE\s+|UNIQUE\s+|TEMP\w*\s+|UNLOGGED\s+)*OBJECT
      | ALTER\s+OBJECT | DROP\s+OBJECT
      | TRUNCATE\s+[\w."]
      | SET\s+(LOCAL\s+|SESSION\s+)?[\w.]+\s*(=|TO\b) | SET\s+(LOCAL\s+)?TIME\s+ZONE\b
      | LOCK\s+(TABLE\s+)?[\w."{]+\s+IN\b
      | COPY\s+[\w."{]+.*\b(FROM|TO)\s+STD(IN|OUT)\b
      | ANALYZE\s+[\w."{] | REINDEX\s+(TABLE|INDEX|SCHEMA|DATABASE)\b | VACUUM\b
    )""".replace("OBJECT", _OBJECTS),
    re.VERBOSE | re.DOTALL,
)

# (file, enclosing function) -> why SQL text is written in Python there.
INLINE_SQL_ALLOWED = {
    ("mysetlist/core/db.py", "connect_sync"): "session setup: every connection runs in UTC",
    ("mysetlist/core/db.py", "_configure"): "session setup: every connection runs in UTC",
    ("mysetlist/core/db.py", "Database.as_role"): "session setup: role and JWT claims",
}


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (module, class, function), which may describe SQL."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def string_starts(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Each string literal's text, an f-string by its literal parts (values as `{}`)."""
    skip = docstrings(tree)
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = ""
            for part in node.values:
                inside_fstrings.add(id(part))
                literal = isinstance(part, ast.Constant) and isinstance(part.value, str)
                text += str(part.value) if literal else "{}"  # type: ignore[attr-defined]
            yield node, text
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skip
            and id(node) not in inside_fstrings
        ):
            yield node, node.value


def test_no_sql_in_python() -> None:
    offenders, used = [], set()
    for source in sources():
        owners = enclosing_functions(source.tree)
        for node, text in string_starts(source.tree):
            if not SQL_START.match(text):
                continue
            key = (source.name, owners.get(node, "<module>"))
            if key in INLINE_SQL_ALLOWED:
                used.add(key)
                continue
            first = " ".join(text.split())[:60]
            offenders.append(
                f"{source.at(node)}: SQL in Python ({first!r}…); move it to a .sql file "
                f"beside this module and run it with read_sql(__package__, name)"
            )
    assert not offenders, "inline SQL:\n" + "\n".join(sorted(offenders))
    stale = sorted(set(INLINE_SQL_ALLOWED) - used)
    assert not stale, f"allowlisted but holding no SQL any more, remove them: {stale}"


def test_the_sql_pattern_tells_sql_from_prose() -> None:
    """The check would be useless if it missed SQL or cried wolf on messages."""
    for statement in (
        "SELECT 1",
        "  INSERT INTO app.users (id) VALUES (%s)",
        "UPDATE public.job_queue_schema SET procrastinate_version = %s",
        "DELETE FROM analytics.user_events WHERE source = 'demo'",
        "WITH recent AS (SELECT 1) SELECT * FROM recent",
        'CREATE DATABASE "{}"',
        "TRUNCATE analytics.user_events",
        "SET LOCAL session_replication_role = replica",
        "SET TIME ZONE 'UTC'",
        "LOCK TABLE analytics.user_events IN SHARE ROW EXCLUSIVE MODE",
        "COPY app.venues (id, name) FROM STDIN",
        "ANALYZE app.users",
        "VACUUM",
    ):
        assert SQL_START.match(statement), statement
    for prose in (
        "Select a user to follow",
        "update failed: %s",
        "SELECT",
        "Set the caller's consent",
        "with_worker",
        "delete the demo world first",
        "UPDATE available",
        "COPY failed",
        "Create the partitions",
    ):
        assert not SQL_START.match(prose), prose


# c. Connections --------------------------------------------------------------------------

CONNECTION_OWNER = "mysetlist/core/db.py"


def test_connections_come_from_core_db() -> None:
    offenders = []
    for source in sources():
        if source.name == CONNECTION_OWNER:
            continue
        for node in ast.walk(source.tree):
            opens = (
                isinstance(node, ast.Attribute)
                and node.attr == "connect"
                and ast.unparse(node.value).split(".")[-1]
                in ("psycopg", "AsyncConnection", "Connection")
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "psycopg"
                and any(alias.name == "connect" for alias in node.names)
            )
            if opens:
                offenders.append(
                    f"{source.at(node)}: opens a PostgreSQL connection itself; use "
                    "mysetlist.core.db.connect (async) or connect_sync (UTC, dict rows)"
                )
    assert not offenders, "connections outside core/db.py:\n" + "\n".join(sorted(offenders))


# d. Lock keys ---------------------------------------------------------------------------

# The hash functions may appear here, for what is not a lock key.
HASHTEXT_ALLOWED = {
    "mysetlist/ml/setlists/blend_input_state.sql": "a checksum of the blend's input, no lock",
}
HASHTEXT = re.compile(r"\bhashtext(extended)?\s*\(", re.IGNORECASE)
ADVISORY_LOCK = re.compile(r"\bpg_(try_)?advisory_(xact_)?(un)?lock(_shared)?\s*\(", re.I)
KEY_AS_PARAMETER = re.compile(
    r"\bpg_(try_)?advisory_(xact_)?(un)?lock(_shared)?\s*\(\s*(%s|%\(\w+\)s|\$\d+)\s*\)", re.I
)


def sql_texts() -> Iterator[tuple[str, str]]:
    """(`file:line`, SQL text) of every .sql file and every string literal in Python."""
    for path in sql_files():
        name = path.relative_to(SRC).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.lstrip().startswith("--"):
                yield f"{name}:{number}", line
    for source in sources():
        for node, text in string_starts(source.tree):
            yield source.at(node), text


def test_lock_keys_come_from_lock_key() -> None:
    offenders = []
    for where, text in sql_texts():
        if HASHTEXT.search(text) and where.rsplit(":", 1)[0] not in HASHTEXT_ALLOWED:
            offenders.append(
                f"{where}: hashes a name in SQL; pass mysetlist.core.db.lock_key(name) "
                "as the lock's parameter instead"
            )
        elif ADVISORY_LOCK.search(text) and not KEY_AS_PARAMETER.search(text):
            offenders.append(
                f"{where}: an advisory lock whose key is not a parameter; write "
                "pg_advisory_…lock(%s) and pass lock_key(name)"
            )
    offenders += advisory_lock_calls_without_lock_key()
    assert not offenders, "advisory-lock keys:\n" + "\n".join(sorted(offenders))


def locking_sql_files() -> set[tuple[str, str]]:
    """(package, file name) of each .sql file that takes an advisory lock."""
    found = set()
    for path in sql_files():
        if ADVISORY_LOCK.search(path.read_text(encoding="utf-8")):
            package = ".".join(path.parent.relative_to(SRC).parts)
            found.add((package, path.name))
    return found


def takes_advisory_lock(source: Source, query: ast.expr, locking: set[tuple[str, str]]) -> bool:
    if isinstance(query, ast.Constant) and isinstance(query.value, str):
        return bool(ADVISORY_LOCK.search(query.value))
    if (
        isinstance(query, ast.Call)
        and ast.unparse(query.func).split(".")[-1] in ("read_sql", "read_sql_statements")
        and len(query.args) == 2
        and isinstance(query.args[1], ast.Constant)
    ):
        package = query.args[0]
        if isinstance(package, ast.Name) and package.id == "__package__":
            resolved = source.module.rpartition(".")[0]
        elif isinstance(package, ast.Constant):
            resolved = str(package.value)
        else:  # a module constant such as _PACKAGE: this module's package by convention
            resolved = source.module.rpartition(".")[0]
        return (resolved, str(query.args[1].value)) in locking
    return False


def statement_call(node: ast.AST) -> tuple[ast.expr, list[ast.expr]] | None:
    """(query, parameters) of a call that runs a statement: `x.execute(q, p)`,
    `db.fetch_one(q, p)`, `fetch_one_in(conn, q, p)`; None for any other node."""
    if not isinstance(node, ast.Call):
        return None
    keywords = [k.value for k in node.keywords]
    name = ast.unparse(node.func).split(".")[-1]
    if isinstance(node.func, ast.Attribute) and name in ("execute", "fetch_one", "fetch_all"):
        return (node.args[0], node.args[1:] + keywords) if node.args else None
    if name in ("fetch_one_in", "fetch_all_in") and len(node.args) >= 2:
        return node.args[1], node.args[2:] + keywords
    return None


def advisory_lock_calls_without_lock_key() -> list[str]:
    """Python that runs a locking statement must pass `lock_key(...)` in its parameters."""
    locking = locking_sql_files()
    offenders = []
    for source in sources():
        for node in ast.walk(source.tree):
            query_and_params = statement_call(node)
            if query_and_params is None:
                continue
            query, params = query_and_params
            if not takes_advisory_lock(source, query, locking):
                continue
            if not any(
                isinstance(inner, ast.Call) and ast.unparse(inner.func).endswith("lock_key")
                for param in params
                for inner in ast.walk(param)
            ):
                offenders.append(
                    f"{source.at(node)}: takes an advisory lock without lock_key(...) in "
                    "its parameters; pass mysetlist.core.db.lock_key(name) there"
                )
    return offenders


# e. Problem -------------------------------------------------------------------------------

# core modules of the HTTP layer (dependencies that answer a request, and middleware).
CORE_HTTP_MODULES = frozenset(
    {
        "mysetlist/core/errors.py",
        "mysetlist/core/auth.py",
        "mysetlist/core/auth_failures.py",
        "mysetlist/core/rate_limit.py",
        "mysetlist/core/operator_auth.py",
        "mysetlist/core/http_middleware.py",
    }
)


def is_http_layer(source: Source) -> bool:
    name = source.path.name
    return (
        name == "routes.py"
        or name.endswith("_routes.py")
        or "middleware" in name
        or source.name in CORE_HTTP_MODULES
    )


def test_only_the_http_layer_speaks_problem() -> None:
    offenders = []
    for source in sources():
        if is_http_layer(source):
            continue
        for node in ast.walk(source.tree):
            imports_problem = isinstance(node, ast.ImportFrom) and any(
                alias.name == "Problem" for alias in node.names
            )
            uses_problem = isinstance(node, ast.Attribute) and node.attr == "Problem"
            if imports_problem or uses_problem:
                offenders.append(
                    f"{source.at(node)}: Problem outside the HTTP layer; raise a domain "
                    "error (a core.errors.DomainError kind, e.g. NotFound, InvalidInput, "
                    "defined in <capability>/errors.py) and let core.errors map it"
                )
    assert not offenders, "Problem in services:\n" + "\n".join(sorted(offenders))
