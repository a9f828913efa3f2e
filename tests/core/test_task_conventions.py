"""Every task of the assembled job app follows core/job_queue.py's one convention: name
`<capability>.<task>`, queue = the capability, no procrastinate `lock` (overlap is an
advisory lock), every periodic task registered through `periodic_task` (queueing_lock and
periodic_id = the task name), and the runtime taken from the job context, never from a
module global."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

import mysetlist
from mysetlist.capabilities import CAPABILITIES
from mysetlist.core import job_queue
from mysetlist.core.config import load_settings
from mysetlist.core.migrate import apply_migrations
from mysetlist.jobs import make_job_app
from tests.conftest import migrated_database


def test_every_task_follows_the_naming_queue_and_lock_convention() -> None:
    settings = load_settings(DATABASE_URL="postgresql://nobody@localhost/none")
    app = make_job_app("postgresql://nobody@localhost/none", settings)
    assert app.tasks, "no tasks registered"
    owners = ("core", *CAPABILITIES)  # core's own upkeep, then each capability's
    name_pattern = re.compile(rf"^({'|'.join(owners)})\.[a-z][a-z0-9_]*$")
    for name, task in app.tasks.items():
        if task.func.__module__.startswith("procrastinate."):  # its built-in remove_old_jobs
            continue
        match = name_pattern.match(name)
        assert match, f"task {name!r} is not named <capability>.<task>"
        assert task.queue == match.group(1), f"{name} is on queue {task.queue!r}"
        assert task.lock is None, f"{name} uses procrastinate lock= (use an advisory lock)"
    periodic = list(app.periodic_registry.periodic_tasks.values())
    assert periodic, "no periodic tasks registered"
    for p in periodic:
        assert p.task.queueing_lock == p.task.name, f"{p.task.name}: queueing_lock"
        assert p.periodic_id == p.task.name, f"{p.task.name}: periodic_id {p.periodic_id!r}"


def test_every_periodic_task_is_registered_through_periodic_task() -> None:
    """One shape for periodic work (task lock, gate, run log): a task built by hand with
    `@app.periodic` has a function of its own module, not periodic_task's wrapper."""
    settings = load_settings(DATABASE_URL="postgresql://nobody@localhost/none")
    app = make_job_app("postgresql://nobody@localhost/none", settings)
    by_hand = [
        p.task.name
        for p in app.periodic_registry.periodic_tasks.values()
        if not p.task.name.startswith("builtin:")
        and not (
            p.task.func.__module__ == job_queue.__name__
            and p.task.func.__qualname__.startswith(f"{job_queue.periodic_task.__name__}.")
        )
    ]
    assert by_hand == [], f"periodic tasks not registered with periodic_task: {by_hand}"


def test_only_periodic_task_calls_app_periodic() -> None:
    """Source check beside the app check: no module other than core/job_queue.py calls
    `.periodic(` (a capability that registers its tasks conditionally is caught too)."""
    package = Path(inspect.getfile(mysetlist)).parent
    callers = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "periodic"
                and path.name != "job_queue.py"
            ):
                callers.append(f"{path.relative_to(package)}:{node.lineno}")
    assert callers == [], f"build periodic tasks with core.job_queue.periodic_task: {callers}"


def test_no_runtime_global_is_left_for_tasks_to_reach() -> None:
    """Tasks get the runtime from the job context (`job_runtime`); the process-wide
    `current()` that every `open_runtime` overwrote is gone, and nothing imports it."""
    from mysetlist.core import runtime

    assert not hasattr(runtime, "current")
    assert not hasattr(runtime, "_current")


@pytest.mark.db
def test_jobs_waiting_under_the_old_names_move_to_the_convention(servers: Any) -> None:
    with migrated_database(servers.admin_url, "mysetlist_renames") as url:
        with psycopg.connect(url, autocommit=True) as conn:
            # as before the upgrade: a scheduled tick and an API run waiting on queue `etl`
            conn.execute(
                """INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args)
                   VALUES ('etl', 'mysetlist.warehouse.etl_daily', 'etl-daily', '{}'),
                          ('etl', 'mysetlist.warehouse.etl_run', 'etl-run-7', '{"run_id": 7}'),
                          ('default', 'tracking.hourly_rollup', 'tracking.hourly_rollup', '{}')"""
            )
            # the upgrade: the rename migration runs on a database that has the jobs
            conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = '0003_task_renames'")
        assert apply_migrations(url) == ["0003_task_renames"]
        with psycopg.connect(url) as conn:
            jobs = conn.execute(
                "SELECT task_name, queue_name, queueing_lock FROM procrastinate_jobs ORDER BY id"
            ).fetchall()
    assert jobs == [
        ("warehouse.etl_daily", "warehouse", "warehouse.etl_daily"),
        ("warehouse.etl_run", "warehouse", "etl-run-7"),
        ("tracking.hourly_rollup", "tracking", "tracking.hourly_rollup"),
    ]
