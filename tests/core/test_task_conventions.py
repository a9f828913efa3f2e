"""Every task of the assembled job app follows core/job_queue.py's one convention: name
`<capability>.<task>`, queue = the capability, no procrastinate `lock` (overlap is an
advisory lock), periodic tasks with queueing_lock and periodic_id = the task name."""

from __future__ import annotations

import re

from mysetlist.capabilities import CAPABILITIES
from mysetlist.core.config import load_settings
from mysetlist.jobs import make_job_app


def test_every_task_follows_the_naming_queue_and_lock_convention() -> None:
    settings = load_settings(DATABASE_URL="postgresql://nobody@localhost/none")
    app = make_job_app("postgresql://nobody@localhost/none", settings)
    assert app.tasks, "no tasks registered"
    name_pattern = re.compile(rf"^({'|'.join(CAPABILITIES)})\.[a-z][a-z0-9_]*$")
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
