"""Schema migrations: plain SQL files applied by yoyo-migrations, plus procrastinate's schema.

Each capability keeps its migrations in its own `migrations/` folder; they are applied in
the order of `MIGRATION_PACKAGES` (a capability may only depend on those before it), and
by file name within a folder.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

MIGRATION_PACKAGES = (
    "mysetlist.core",
    "mysetlist.platform",
    "mysetlist.tracking",
    "mysetlist.warehouse",
    "mysetlist.demo",
)


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


def _apply_job_queue_schema(database_url: str) -> None:
    """procrastinate's tables, installed once (its own upgrades are its migrations)."""
    from procrastinate import App, SyncPsycopgConnector

    with psycopg.connect(database_url, autocommit=True) as conn:
        installed = conn.execute("SELECT to_regclass('public.procrastinate_jobs')").fetchone()
        if installed and installed[0] is not None:
            return
        # Serialise concurrent first starts.
        conn.execute("SELECT pg_advisory_lock(872361)")
        try:
            installed = conn.execute("SELECT to_regclass('public.procrastinate_jobs')").fetchone()
            if installed and installed[0] is None:
                app = App(connector=SyncPsycopgConnector(conninfo=database_url))
                with app.open():
                    app.schema_manager.apply_schema()
        finally:
            conn.execute("SELECT pg_advisory_unlock(872361)")
