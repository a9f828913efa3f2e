"""One settings check: every capability's settings class is found through `capabilities.py`
and read at startup, so a bad value of any capability's variable stops the real CLI with
exit 2 and one line naming the variable (not a 500 or a worker traceback later)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

import mysetlist
from mysetlist.capabilities import CAPABILITIES, settings_classes
from mysetlist.core.config import Settings, load_settings, variables_of
from mysetlist.core.migrate import MIGRATION_PACKAGES
from mysetlist.notify.config import NotifySettings

# One bad value per capability settings class (ML twice: its recommender part too).
BAD_VALUES = [
    ("tracking", "MYSETLIST_RATE_LIMIT_ANONYMOUS", "fast"),
    ("tracking", "MYSETLIST_RATE_LIMIT_USER", "zzz"),
    ("warehouse", "ETL_PARALLELISM", "0"),
    ("warehouse", "ETL_INCREMENTAL_CRON", "bad"),
    ("ml", "ML_CHURN_HORIZON_DAYS", "soon"),
    ("ml", "RECOMMEND_TRAIN_CRON", "nightly"),
    ("notify", "EMAIL_PROVIDERS", "fax"),
    ("dashboard", "DASHBOARD_SESSION_SECONDS", "forever"),
    ("privacy", "MYSETLIST_NOTIFICATION_RETENTION_DAYS", "oops"),
]


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`mysetlist …` of this tree in a fresh process, with only `env` set (no `.env`: the
    working directory is empty)."""
    src = str(Path(mysetlist.__file__).resolve().parents[1])
    return subprocess.run(
        [sys.executable, "-m", "mysetlist", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("capability", "variable", "value"), BAD_VALUES)
def test_a_bad_capability_setting_stops_startup_naming_it(
    tmp_path: Path, capability: str, variable: str, value: str
) -> None:
    result = run_cli(tmp_path, "migrate", **{variable: value})
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {variable}: ")
    assert result.stdout == ""  # nothing ran


def test_every_capability_settings_class_has_a_bad_value_case() -> None:
    """A capability that gains settings is checked above too (the list cannot fall behind)."""
    tested = {capability for capability, _, _ in BAD_VALUES}
    found = {cls.__module__.split(".")[1] for cls in settings_classes()}
    assert found == tested
    # each variable belongs to the class of the capability it is listed under
    for capability, variable, _ in BAD_VALUES:
        (cls,) = [c for c in settings_classes() if c.__module__ == f"mysetlist.{capability}.config"]
        assert variable in variables_of(cls)


def test_every_variable_has_one_owner() -> None:
    """Two classes reading one variable could disagree (tracking and core both read
    MYSETLIST_RATE_LIMIT_AUTH_FAILURES once); a shared value belongs to core."""
    owners: dict[str, list[str]] = {}
    classes: list[type[BaseSettings]] = [Settings, *settings_classes()]
    for cls in classes:
        for variable in variables_of(cls):
            owners.setdefault(variable, []).append(cls.__name__)
    assert {v: o for v, o in owners.items() if len(o) > 1} == {}


def test_the_capability_list_is_the_one_migrations_follow() -> None:
    """Every package with migrations is a capability (or core), migrated in list order."""
    root = Path(mysetlist.__file__).parent
    with_migrations = {p.parent.name for p in root.glob("*/migrations") if p.is_dir()}
    assert with_migrations - {"core"} <= set(CAPABILITIES)
    assert MIGRATION_PACKAGES[0] == "mysetlist.core"
    assert [p.removeprefix("mysetlist.") for p in MIGRATION_PACKAGES[1:]] == list(CAPABILITIES)


def test_an_app_gets_capability_variables_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_PUSH_MAX_SUBSCRIPTIONS", "7")
    settings = load_settings()
    ours = settings.with_variables(NOTIFY_PUSH_MAX_SUBSCRIPTIONS="3")
    assert ours.of(NotifySettings).push_max_subscriptions == 3
    assert settings.of(NotifySettings).push_max_subscriptions == 7  # the original keeps its own
    # read once per set of values, and again when the environment changes
    assert settings.of(NotifySettings) is settings.of(NotifySettings)
    monkeypatch.setenv("NOTIFY_PUSH_MAX_SUBSCRIPTIONS", "9")
    assert settings.of(NotifySettings).push_max_subscriptions == 9


def test_settings_are_declared_and_read_one_way() -> None:
    """Settings classes live only in core/config.py and the capabilities' config modules
    (the ones startup checks), and only core.config builds them (`capability_settings`):
    no class of settings a startup check would miss, no private way of reading one."""
    root = Path(mysetlist.__file__).parent
    checked = {"core/config.py"} | {
        f"{cls.__module__.split('.')[1]}/config.py" for cls in settings_classes()
    }
    declaring, building = [], []
    for path in root.rglob("*.py"):
        name = path.relative_to(root).as_posix()
        text = path.read_text()
        if re.search(r"^class \w+\([^)]*BaseSettings[^)]*\):", text, re.M) and name not in checked:
            declaring.append(name)
        if "load_settings_class(" in text and name != "core/config.py":
            building.append(name)
    assert declaring == []
    assert building == []
