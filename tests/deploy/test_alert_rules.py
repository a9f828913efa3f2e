"""The Prometheus alert rules (deploy/prometheus/alerts.yml): promtool checks them and runs
their unit tests (tests/alerts_test.yml: each alert firing, and quiet when it should be), and every
metric a rule or its annotations read is one the code exposes, so renaming a metric without
its rules fails here instead of silencing an alert in production.

promtool comes with Debian's `prometheus` package; without it these tests skip, except
in CI (CI=true), where a missing promtool is a broken CI host, never a pass."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import mysetlist
from mysetlist.core.state_metrics import metric_names

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "tests" / "alerts_test.yml"

# Metrics a rule may read that this code does not define, and why. (The replica-lag gauge
# the replica rules read, mysetlist_db_replica_lag_seconds, is core/db.py's: checked too.)
NOT_OURS = {
    "up": "Prometheus's own: 1 when the last scrape of a target succeeded",
}

# A metric name in PromQL: ours all start with mysetlist_; `up` is the one other we use.
METRIC_NAME = re.compile(r"\b(mysetlist_[a-z0-9_]+|up)\b")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing on the CI host (apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )


def test_promtool_checks_the_rules() -> None:
    result = _run("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = _run("test", "rules", str(RULE_TESTS.relative_to(RULES_DIR)))
    assert result.returncode == 0, result.stdout + result.stderr


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_yml_beside_the_rules_is_a_rule_file() -> None:
    """Whatever loads deploy/prometheus/*.yml as rule files (the local cluster's Prometheus
    does) must not meet anything else there: the unit tests live in tests/."""
    for path in sorted(RULES_DIR.glob("*.yml")):
        result = _run("check", "rules", path.name)
        assert result.returncode == 0, path.name + ": " + result.stdout + result.stderr


def test_every_rule_has_severity_summary_and_description() -> None:
    for rule in _rules():
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert isinstance(labels, dict)
        assert isinstance(annotations, dict)
        assert labels.get("severity") in {"critical", "warning", "info"}, rule["alert"]
        assert annotations.get("summary"), rule["alert"]
        assert annotations.get("description"), rule["alert"]


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    quiet = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    alerts = {str(rule["alert"]) for rule in _rules()}
    assert alerts - fired == set(), "alerts no test shows firing"
    assert alerts - quiet == set(), "alerts no test shows staying quiet"


def _code_metric_names() -> set[str]:
    """Every series name the code's metrics can expose: each module that uses
    prometheus_client is imported (registering its metrics), then the registry's families
    are expanded to their sample names, plus the database-state gauges."""
    src = Path(mysetlist.__file__).parent
    for path in sorted(src.rglob("*.py")):
        if "prometheus_client" in path.read_text():
            module = ".".join(path.relative_to(src.parent).with_suffix("").parts)
            importlib.import_module(module)
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
    }
    names: set[str] = set(metric_names())
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


def test_every_metric_the_rules_read_exists_in_the_code() -> None:
    used: set[str] = set()
    for rule in _rules():
        texts = [str(rule["expr"]), *map(str, (rule.get("annotations") or {}).values())]
        for text in texts:
            used.update(METRIC_NAME.findall(text))
    assert used, "no metric found in the rules: the pattern is wrong"
    missing = used - _code_metric_names() - set(NOT_OURS)
    assert missing == set(), f"rules read metrics the code does not expose: {sorted(missing)}"


def test_the_metric_check_catches_a_renamed_metric() -> None:
    names = _code_metric_names()
    assert "mysetlist_http_responses_total" in names
    assert "mysetlist_http_response_total" not in names  # a typo is not "found"
