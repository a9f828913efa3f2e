"""The alert rules against the real thing: a real Prometheus (Debian's `prometheus`) loads
deploy/prometheus/alerts.yml, scrapes the API's /metrics (its own metrics and the
database's state), and raises an alert from what the API counts. The promtool unit tests
prove the rules' logic on made-up series; this proves the names and labels the rules
expect are the ones the running code exposes, and that Prometheus loads the rule file.

Without the prometheus binary it skips, except in CI (CI=true), where it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conditions import first_answer, wait_until
from tests.conftest import free_port

pytestmark = pytest.mark.db

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


@pytest.fixture(scope="module")
def prometheus(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the test API every second, with the alert rules; its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus is missing on the CI host (apt-get install prometheus)")
        pytest.skip("prometheus not installed (Debian: apt-get install prometheus)")
    home = tmp_path_factory.mktemp("prometheus")
    config = home / "prometheus.yml"
    target = urlsplit(api_url).netloc
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        f"scrape_configs:\n  - job_name: api\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address={url.removeprefix('http://')}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # /-/ready answers 503 until the TSDB is open (slower on a busy host): wait for 200.
        wait_until(
            lambda: first_answer(f"{url}/-/ready", process).status_code == 200,
            "Prometheus to be ready",
            within=90,
        )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def _alerts(prometheus: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10)
    assert answer.status_code == 200, answer.text
    alerts: list[dict[str, Any]] = answer.json()["data"]["alerts"]
    return alerts


def test_prometheus_loads_the_rules(prometheus: str) -> None:
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"EtlRunFailed", "DatabaseDown", "WebhookSignatureFailures"} <= names


def test_the_scrape_carries_the_database_state(prometheus: str) -> None:
    def state_up() -> list[dict[str, Any]] | None:
        return _query(prometheus, "mysetlist_state_metrics_up == 1") or None

    wait_until(state_up, "Prometheus to scrape mysetlist_state_metrics_up 1", within=30)
    assert _query(prometheus, 'mysetlist_dependency_up{dependency="database"} == 1')


def test_a_forged_webhook_raises_its_alert(api_url: str, prometheus: str) -> None:
    # Scraped once before, so the counter's series is new when the forgery comes.
    wait_until(lambda: _query(prometheus, "up == 1") or None, "a first scrape", within=30)
    answer = httpx.post(f"{api_url}/api/webhooks/ses", content=b"{}", timeout=10)
    assert 400 <= answer.status_code < 500, answer.text

    # The alert of this forgery's source: the in-process API's counters live in this test
    # process's registry, so other providers' forgeries sent by test files that ran earlier
    # in the same process (pytest -n) may have raised theirs too.
    def firing() -> dict[str, Any] | None:
        for alert in _alerts(prometheus):
            labels = alert["labels"]
            if (
                labels["alertname"] == "WebhookSignatureFailures"
                and labels.get("source") == "ses"
                and alert["state"] == "firing"
            ):
                return alert
        return None

    alert = wait_until(firing, "WebhookSignatureFailures{source=ses} to fire", within=60)
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == "Webhook signatures fail from ses"
    # and nothing that should not: the database and Redis answer, the target is up
    quiet = {"DatabaseDown", "RedisDown", "TargetDown", "StateMetricsUnavailable"}
    assert not [a for a in _alerts(prometheus) if a["labels"]["alertname"] in quiet]
