"""Schema migrations: plain SQL files applied by yoyo-migrations, plus procrastinate's schema
(installed once, then version-checked: see `_apply_job_queue_schema`).

Each capability keeps its migrations in its own `migrations/` folder; they are applied
core's first, then in the order of `capabilities.CAPABILITIES` (a capability may only depend
on those before it), and by file name within a folder.
"""

from __future__ import annotations

import importlib.metadata
from importlib import resources
from pathlib import Path

from yoyo import get_backend, read_migrations

from mysetlist.capabilities import CAPABILITIES
from mysetlist.core.db import connect_sync, lock_key, read_sql

_PACKAGE = "mysetlist.core"
_SCHEMA_LOCK = "mysetlist.job_queue_schema"

MIGRATION_PACKAGES = ("mysetlist.core", *(f"mysetlist.{name}" for name in CAPABILITIES))


def migration_dirs() -> list[str]:
    dirs = []
    for package in MIGRATION_PACKAGES:
        path = Path(str(resources.files(package))) / "migrations"
        if path.is_dir():
            dirs.append(str(path))
    return dirs


def _yoyo_url(database_url: str) -> str:
    # yoyo picks its psycopg 3 backend by this scheme.
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def apply_migrations(database_url: str) -> list[str]:
    """Apply pending migrations; return the ids applied (empty when up to date)."""
    backend = get_backend(_yoyo_url(database_url))
    migrations = read_migrations(*migration_dirs())
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    applied = [m.id for m in pending]
    _apply_job_queue_schema(database_url)
    return applied


class JobQueueSchemaOutdated(RuntimeError):
    """The job queue's tables are not at the schema the installed procrastinate expects."""


def shipped_job_queue_migrations() -> list[str]:
    """procrastinate's SQL migrations shipped with the installed version, in order."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    return sorted(path.name for path in folder.glob("*.sql"))


def _apply_job_queue_schema(database_url: str) -> None:
    """Install procrastinate's tables on a new database, and on an existing one check that
    they are at the schema the installed procrastinate expects.

    procrastinate ships schema changes as SQL migrations in two halves (`*_pre_*` before
    the new version's workers start, `*_post_*` once no old worker runs), which a deploy
    must order around its workers; applying them at some process's start could break the
    workers still running the old version. So procrastinate is pinned to one version
    (pyproject), the migration its schema includes is recorded at install
    (`public.job_queue_schema`), and a start with a newer procrastinate whose migrations
    are not applied fails here, naming them, instead of failing later inside a worker.
    """
    from procrastinate.schema import SchemaManager

    shipped = shipped_job_queue_migrations()
    latest = shipped[-1]
    version = importlib.metadata.version("procrastinate")
    with connect_sync(database_url, application_name="mysetlist-migrate", autocommit=True) as conn:
        # Serialise concurrent first starts.
        conn.execute(read_sql(_PACKAGE, "advisory_lock.sql"), (lock_key(_SCHEMA_LOCK),))
        try:
            with conn.transaction():
                state = conn.execute(read_sql(_PACKAGE, "job_queue_schema_state.sql")).fetchone()
                assert state is not None  # one row, always
                recorded = {"version": version, "last_migration": latest}
                if not state["installed"]:
                    conn.execute(SchemaManager.get_schema())
                    conn.execute(read_sql(_PACKAGE, "job_queue_schema_record.sql"), recorded)
                elif state["last_migration"] is None:
                    # Installed before versions were recorded: by the pinned version.
                    conn.execute(read_sql(_PACKAGE, "job_queue_schema_record.sql"), recorded)
                else:
                    _check_job_queue_schema(
                        shipped, version, state["procrastinate_version"], state["last_migration"]
                    )
                    conn.execute(read_sql(_PACKAGE, "job_queue_schema_version.sql"), recorded)
        finally:
            conn.execute(read_sql(_PACKAGE, "advisory_unlock.sql"), (lock_key(_SCHEMA_LOCK),))


def _check_job_queue_schema(
    shipped: list[str], version: str, recorded_version: str, recorded_migration: str
) -> None:
    pending = [name for name in shipped if name > recorded_migration]
    if pending:
        raise JobQueueSchemaOutdated(
            f"the job queue's tables were installed by procrastinate {recorded_version} "
            f"(schema up to {recorded_migration}); procrastinate {version} needs these "
            f"migrations first: {', '.join(pending)}. Apply them in order from "
            f"`procrastinate schema --migrations-path` (the *_pre_* ones before starting "
            f"the new version, the *_post_* ones once no old worker runs), then run: "
            f"UPDATE public.job_queue_schema SET procrastinate_version = '{version}', "
            f"last_migration = '{shipped[-1]}'"
        )
    if recorded_migration > shipped[-1]:
        raise JobQueueSchemaOutdated(
            f"the job queue's tables are at procrastinate {recorded_version}'s schema "
            f"(up to {recorded_migration}), newer than the installed procrastinate "
            f"{version} knows: install procrastinate=={recorded_version}"
        )
