"""The codebase's layout rules (issue 16), checked statically over `src/` (ast, no database).

a. Capabilities meet only through core: a capability package imports `mysetlist.core`,
   itself, and `mysetlist.startup` (only from its `commands.py`); core imports no
   capability. The wiring (`capabilities.py`, `cli.py`, `api.py`, `jobs.py`, `startup.py`,
   `demo/`) may import any of them.
b. SQL lives in `.sql` files read through `core.db.read_sql`: no SQL text in Python, except
   the session setup in `core/db.py` (allowlisted below, each entry with its reason).
   Statements that name tables at run time are `.sql` templates filled with `psycopg.sql`.
c. Connections (and pools) come only from `core/db.py`.
d. Advisory-lock keys come from `core.db.lock_key`: no `hashtext`/`hashtextextended` (but
   the allowlisted checksum), a lock's SQL takes its key as a parameter, and the Python that
   runs it passes `lock_key(...)`.
e. `Problem` (HTTP) belongs to the HTTP layer: route modules, core's HTTP dependencies and
   middleware. Services raise domain errors (`core.errors.DomainError` kinds).

Each rule is a function from sources to offenders (`file:line: what to do instead`); the
`test_*_rule_catches` tests feed it a known offender, so a rule that stopped seeing
anything would fail there rather than pass quietly on the tree.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mysetlist import capabilities

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "mysetlist"

# The one list: a capability added there is checked here too.
CAPABILITIES = frozenset(capabilities.CAPABILITIES)


@dataclass(frozen=True)
class Source:
    """A Python file under src/, parsed."""

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
    def package(self) -> str:
        return self.module if self.path.name == "__init__.py" else self.module.rpartition(".")[0]

    @property
    def area(self) -> str:
        """`core`, a capability, or a wiring module, by the first name under mysetlist/."""
        return self.path.relative_to(PACKAGE).with_suffix("").parts[0]

    def at(self, node: ast.AST) -> str:
        return f"{self.name}:{getattr(node, 'lineno', 0)}"


@dataclass(frozen=True)
class SqlFile:
    """A .sql file under src/."""

    path: Path
    text: str

    @property
    def name(self) -> str:
        return self.path.relative_to(SRC).as_posix()

    @property
    def package(self) -> str:
        return ".".join(self.path.parent.relative_to(SRC).parts)

    def at(self, offset: int) -> str:
        return f"{self.name}:{self.text.count(chr(10), 0, offset) + 1}"


@cache
def sources() -> tuple[Source, ...]:
    return tuple(
        Source(path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    )


@cache
def sql_files() -> tuple[SqlFile, ...]:
    return tuple(
        SqlFile(path, path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.sql"))
    )


def _place(offender: str) -> tuple[str, int]:
    file, _, rest = offender.partition(":")
    line = rest.partition(":")[0]
    return file, int(line) if line.isdigit() else 0


def assert_none(title: str, offenders: list[str]) -> None:
    """Fail listing every offender, by file and line."""
    listed = "\n".join(sorted(set(offenders), key=_place))
    assert not offenders, f"{title} ({len(set(offenders))}):\n{listed}"


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
    """Every module `source` imports (also inside functions, under `TYPE_CHECKING`, and by
    `import_module("…")`), relative imports resolved; `from mysetlist import x` counts as
    importing `mysetlist.x`."""
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = source.package.split(".")
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            if base == "mysetlist":
                for alias in node.names:
                    yield node, f"mysetlist.{alias.name}"
            else:
                yield node, base
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).split(".")[-1] == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            yield node, str(node.args[0].value)


def allowed_imports(source: Source) -> frozenset[str] | None:
    """The parts of mysetlist `source` may import (None: any, for the wiring)."""
    if source.area in CAPABILITIES:
        own = {"core", source.area}
        if source.path.name == "commands.py":
            own.add("startup")  # a command starts the servers the way every command does
        return frozenset(own)
    if source.area == "core":
        # The one list of capabilities (names only): migrations apply in its order.
        return frozenset({"core", "capabilities"})
    return None


def import_offenders(sources: Sequence[Source]) -> list[str]:
    offenders = []
    for source in sources:
        allowed = allowed_imports(source)
        if allowed is None:
            continue
        for node, module in imported_modules(source):
            parts = module.split(".")
            if parts[0] != "mysetlist" or len(parts) < 2 or parts[1] in allowed:
                continue
            advice = (
                "core must not depend on a capability (invert it: the capability registers "
                "with core, or the wiring passes it in)"
                if source.area == "core"
                else "a capability imports only mysetlist.core and itself (meet another "
                "capability through the database, the queue or a seam in core)"
            )
            offenders.append(f"{source.at(node)}: {source.area} imports {module}; {advice}")
    return offenders


def test_capabilities_meet_only_through_core() -> None:
    assert_none("imports across capabilities", import_offenders(sources()))


# b. Inline SQL --------------------------------------------------------------------------

# What CREATE, ALTER and DROP act on (so "Create the partitions" in a message is prose).
_OBJECTS = (
    r"(TABLE|INDEX|VIEW|MATERIALIZED|SCHEMA|DATABASE|FUNCTION|TRIGGER|ROLE|SEQUENCE|TYPE"
    r"|EXTENSION|POLICY|SYSTEM|DEFAULT)\b"
)
# SQL keywords are upper case here, prose is not: a statement's start, then what must follow.
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


def string_literals(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Each string literal's text but docstrings; an f-string's by its literal parts, each
    value standing as `{}`."""
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                skip.add(id(part))
            yield (
                node,
                "".join(
                    part.value
                    if isinstance(part, ast.Constant) and isinstance(part.value, str)
                    else "{}"
                    for part in node.values
                ),
            )
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node, node.value


def inline_sql(sources: Sequence[Source]) -> tuple[list[str], set[tuple[str, str]]]:
    """Offenders, and the allowlist entries that matched something."""
    offenders, used = [], set()
    for source in sources:
        owners = enclosing_functions(source.tree)
        for node, text in string_literals(source.tree):
            if not SQL_START.match(text):
                continue
            key = (source.name, owners.get(node, "<module>"))
            if key in INLINE_SQL_ALLOWED:
                used.add(key)
                continue
            first = " ".join(text.split())[:60]
            offenders.append(
                f"{source.at(node)}: SQL in Python ({first!r}); move it to a .sql file beside "
                "this module, run it with read_sql(package, name) (a table named at run "
                "time: a {placeholder} in the file, filled with psycopg.sql)"
            )
    return offenders, used


def test_no_sql_in_python() -> None:
    offenders, used = inline_sql(sources())
    assert_none("SQL in Python", offenders)
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
        "CREATE TEMP TABLE etl_scope (id text)",
        "ALTER TABLE app.users ADD COLUMN x int",
        "DROP TABLE {}",
        "TRUNCATE analytics.user_events",
        "SET LOCAL session_replication_role = replica",
        "SET TIME ZONE 'UTC'",
        "LOCK TABLE analytics.user_events IN SHARE ROW EXCLUSIVE MODE",
        "COPY app.venues (id, name) FROM STDIN",
        "ANALYZE app.users",
        "REINDEX INDEX CONCURRENTLY {}",
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
        "DROP the table?",
        "the job queue's tables: UPDATE public.job_queue_schema SET x = 1",
    ):
        assert not SQL_START.match(prose), prose


# c. Connections --------------------------------------------------------------------------

CONNECTION_OWNER = "mysetlist/core/db.py"
# Who opens connections: psycopg's classes and the pools of psycopg_pool.
CONNECTORS = ("psycopg", "Connection", "AsyncConnection")
POOLS = ("ConnectionPool", "AsyncConnectionPool", "NullConnectionPool", "AsyncNullConnectionPool")


def connection_offenders(sources: Sequence[Source]) -> list[str]:
    offenders = []
    for source in sources:
        if source.name == CONNECTION_OWNER:
            continue
        for node in ast.walk(source.tree):
            opens = (
                isinstance(node, ast.Attribute)
                and node.attr == "connect"
                and ast.unparse(node.value).split(".")[-1] in CONNECTORS
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module in ("psycopg", "psycopg_pool")
                and any(alias.name in ("connect", *POOLS) for alias in node.names)
            )
            if opens:
                offenders.append(
                    f"{source.at(node)}: opens PostgreSQL connections itself (no UTC "
                    "session); use mysetlist.core.db.connect (async), connect_sync, or "
                    "Database"
                )
    return offenders


def test_connections_come_from_core_db() -> None:
    assert_none("connections outside core/db.py", connection_offenders(sources()))


# d. Lock keys ---------------------------------------------------------------------------

# The hash functions may appear here, for what is not a lock key.
HASHTEXT_ALLOWED = {
    "mysetlist/ml/setlists/blend_input_state.sql": "a checksum of the blend's input, no lock",
}
HASHTEXT = re.compile(r"\bhashtext(extended)?\s*\(", re.IGNORECASE)
ADVISORY_LOCK = re.compile(r"\bpg_(try_)?advisory_(xact_)?(un)?lock(_shared)?\s*\(", re.I)
KEY_AS_PARAMETER = re.compile(r"\s*(%s|%\(\w+\)s|\$\d+)\s*\)")  # matched after the "("


def sql_comments_blanked(text: str) -> str:
    """`text` with its `--` comments blanked (lengths kept, so offsets still give lines)."""
    return re.sub(r"--[^\n]*", lambda m: " " * len(m.group()), text)


def lock_sql_offenders(text: str) -> Iterator[tuple[int, str]]:
    """(offset, what to do) of each lock key hashed in SQL or written as anything but a
    parameter."""
    text = sql_comments_blanked(text)
    hashed = "hashes a name in SQL; pass mysetlist.core.db.lock_key(name) as the parameter"
    lock_arguments = set()
    for match in ADVISORY_LOCK.finditer(text):
        if KEY_AS_PARAMETER.match(text, match.end()):
            continue
        argument = re.compile(r"\s*").match(text, match.end())
        assert argument is not None
        lock_arguments.add(argument.end())
        yield (
            match.start(),
            (
                hashed
                if HASHTEXT.match(text, argument.end())
                else "an advisory lock whose key is not a parameter; write pg_advisory_…lock(%s) "
                "and pass lock_key(name)"
            ),
        )
    for match in HASHTEXT.finditer(text):
        if match.start() not in lock_arguments:
            yield match.start(), hashed


def module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level `NAME = "text"` assignments (e.g. `_PACKAGE = "mysetlist.core"`)."""
    found = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def takes_advisory_lock(source: Source, query: ast.expr, locking: set[tuple[str, str]]) -> bool:
    """Whether `query` (a string, or `read_sql(package, "file.sql")`) takes an advisory lock."""
    if isinstance(query, ast.Constant) and isinstance(query.value, str):
        return bool(ADVISORY_LOCK.search(query.value))
    if (
        isinstance(query, ast.Call)
        and ast.unparse(query.func).split(".")[-1] in ("read_sql", "read_sql_statements")
        and len(query.args) == 2
        and isinstance(query.args[1], ast.Constant)
    ):
        package = query.args[0]
        if isinstance(package, ast.Constant):
            resolved = str(package.value)
        elif isinstance(package, ast.Name):
            resolved = module_strings(source.tree).get(package.id, source.package)
        else:
            resolved = source.package
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


def lock_key_offenders(sources: Sequence[Source], sql: Sequence[SqlFile]) -> list[str]:
    offenders = []
    locking = set()
    for file in sql:
        if file.name not in HASHTEXT_ALLOWED:
            offenders += [
                f"{file.at(at)}: {advice}" for at, advice in lock_sql_offenders(file.text)
            ]
        if ADVISORY_LOCK.search(sql_comments_blanked(file.text)):
            locking.add((file.package, file.path.name))
    for source in sources:
        for node, text in string_literals(source.tree):
            offenders += [f"{source.at(node)}: {advice}" for _, advice in lock_sql_offenders(text)]
        # Python that runs a locking statement passes `lock_key(...)` in its parameters.
        for node in ast.walk(source.tree):
            call = statement_call(node)
            if call is None or not takes_advisory_lock(source, call[0], locking):
                continue
            if not any(
                isinstance(inner, ast.Call) and ast.unparse(inner.func).endswith("lock_key")
                for param in call[1]
                for inner in ast.walk(param)
            ):
                offenders.append(
                    f"{source.at(node)}: takes an advisory lock without lock_key(...) in its "
                    "parameters; pass mysetlist.core.db.lock_key(name) there"
                )
    return offenders


def test_lock_keys_come_from_lock_key() -> None:
    assert_none("advisory-lock keys", lock_key_offenders(sources(), sql_files()))


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


def problem_offenders(sources: Sequence[Source]) -> list[str]:
    offenders = []
    for source in sources:
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
                    "error (a core.errors.DomainError kind such as NotFound or InvalidInput, "
                    "subclassed in <capability>/errors.py) and let core.errors map it"
                )
    return offenders


def test_only_the_http_layer_speaks_problem() -> None:
    assert_none("Problem in services", problem_offenders(sources()))


# The rules catch what they are for ----------------------------------------------------------


def synthetic(name: str, code: str) -> Source:
    """A made-up module at mysetlist/`name` (never written to disk)."""
    return Source(PACKAGE / name, ast.parse(textwrap.dedent(code)))


def test_import_rule_catches() -> None:
    bad = [
        synthetic("dashboard/panels.py", "from mysetlist.warehouse.runs import list_runs"),
        synthetic("dashboard/live.py", "def f():\n    from ..tracking import live_metrics"),
        synthetic("ml/train.py", "import importlib\nimportlib.import_module('mysetlist.notify')"),
        synthetic("notify/sending.py", "from mysetlist.startup import started"),
        synthetic("core/runtime.py", "from mysetlist import notify"),
    ]
    good = [
        synthetic("notify/commands.py", "from mysetlist.startup import started"),
        synthetic("notify/inbox/routes.py", "from ..sending import send\nfrom . import x"),
        synthetic("cli.py", "from mysetlist.warehouse.commands import rebuild"),
        synthetic("core/migrate.py", "from mysetlist.capabilities import CAPABILITIES"),
    ]
    assert [o.split(":")[0] for o in import_offenders(bad)] == [s.name for s in bad]
    assert import_offenders(good) == []


def test_inline_sql_rule_catches() -> None:
    bad = synthetic(
        "warehouse/runs.py",
        '''
        async def latest(conn):
            await conn.execute(
                "SELECT id FROM analytics.etl_runs"
                " ORDER BY id DESC LIMIT 1"
            )
        STATEMENT = f"""
            DELETE FROM {TABLE} WHERE id = %s"""
        ''',
    )
    good = synthetic(
        "warehouse/runs.py",
        '''
        """SELECT is how a docstring may begin."""
        def latest():
            """INSERT INTO described in prose is fine here."""
            log.info("Select a run: %s", read_sql(__package__, "runs_latest.sql"))
        ''',
    )
    # the implicitly joined string (line 4), the f-string by its literal parts (line 7)
    assert sorted(o.split(": ")[0] for o in inline_sql([bad])[0]) == [
        "mysetlist/warehouse/runs.py:4",
        "mysetlist/warehouse/runs.py:7",
    ]
    assert inline_sql([good])[0] == []


def test_connection_rule_catches() -> None:
    bad = [
        synthetic("cli.py", "import psycopg\nwith psycopg.connect(url) as conn: pass"),
        synthetic("tracking/x.py", "c = await psycopg.AsyncConnection.connect(url)"),
        synthetic("dashboard/x.py", "from psycopg import connect"),
        synthetic("ml/x.py", "from psycopg_pool import AsyncConnectionPool"),
    ]
    assert len(connection_offenders(bad)) == len(bad)
    owner = synthetic("core/db.py", "c = await psycopg.AsyncConnection.connect(url)")
    assert connection_offenders([owner]) == []


def test_lock_key_rule_catches() -> None:
    hashed = synthetic(
        "notify/templates.py",
        'await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (n,))',
    )
    unkeyed = synthetic(
        "ml/registry.py", 'await conn.execute("SELECT pg_advisory_xact_lock(%s)", (name,))'
    )
    from_file = synthetic(
        "core/job_queue.py",
        'await conn.execute(read_sql("mysetlist.core", "advisory_unlock.sql"), (name,))',
    )
    keyed = synthetic(
        "core/job_queue.py",
        'await conn.execute(read_sql(_PACKAGE, "advisory_unlock.sql"), (lock_key(name),))\n'
        '_PACKAGE = "mysetlist.core"',
    )
    sql = [SqlFile(PACKAGE / "core/advisory_unlock.sql", "SELECT pg_advisory_unlock(%s)")]
    assert len(lock_key_offenders([hashed], sql)) == 2  # hashed, and no lock_key passed
    assert len(lock_key_offenders([unkeyed], sql)) == 1
    assert len(lock_key_offenders([from_file], sql)) == 1
    assert lock_key_offenders([keyed], sql) == []
    in_sql = SqlFile(
        PACKAGE / "notify/x.sql", "-- hashtext( in a comment\nSELECT pg_advisory_lock(42)"
    )
    assert lock_key_offenders([], [in_sql]) == [
        "mysetlist/notify/x.sql:2: an advisory lock whose key is not a parameter; write "
        "pg_advisory_…lock(%s) and pass lock_key(name)"
    ]


def test_problem_rule_catches() -> None:
    service = synthetic("notify/sending.py", "from mysetlist.core.errors import Problem")
    qualified = synthetic("ml/service.py", "raise errors.Problem(404, 'Not Found')")
    routes = [
        synthetic("notify/routes.py", "from mysetlist.core.errors import Problem"),
        synthetic("notify/inbox_routes.py", "from mysetlist.core.errors import Problem"),
        synthetic("core/auth.py", "from mysetlist.core.errors import Problem"),
    ]
    assert len(problem_offenders([service, qualified])) == 2
    assert problem_offenders(routes) == []
