"""Attack: read `/metrics` from outside, and find an operator token printed by `mysetlist serve`
in a shared terminal or log (issue 15, item 15). `/metrics` answers only clients from
MYSETLIST_METRICS_ALLOW_FROM (default: loopback and private ranges) and, when
MYSETLIST_METRICS_TOKEN is set, only with that bearer token; anyone else gets 404.
`mysetlist serve` prints an operator token only with `--print-token`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mysetlist.core.config import ConfigError, Settings, load_settings
from tests.conditions import wait_until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, free_port, serve_app

pytestmark = pytest.mark.db
METRICS_TOKEN = "m" * 24


@contextmanager
def own_api(settings: Settings, database_url: str, redis_url: str, **updates: Any) -> Iterator[str]:
    from mysetlist.api import create_app

    ours = settings.model_copy(update=updates)
    with serve_app(create_app(ours, database_url, redis_url, with_worker=False)) as url:
        yield url


def metrics_status(url: str, **headers: str) -> int:
    return httpx.get(url + "/metrics", headers=headers, timeout=30).status_code


def test_metrics_answer_internal_clients_only(
    api_url: str, settings: Settings, database_url: str, redis_url: str
) -> None:
    r = httpx.get(api_url + "/metrics")
    assert r.status_code == 200  # loopback is inside
    assert "mysetlist_security_events" in r.text
    # Behind a trusted proxy, the client it names decides.
    with own_api(settings, database_url, redis_url, trusted_proxies=["127.0.0.1"]) as url:
        public = metrics_status(url, **{"X-Forwarded-For": "203.0.113.9"})
        mapped = metrics_status(url, **{"X-Forwarded-For": "::ffff:203.0.113.9"})
        private = metrics_status(url, **{"X-Forwarded-For": "10.1.2.3"})
        assert (
            httpx.get(
                url + "/metrics/", headers={"X-Forwarded-For": "203.0.113.9"}, follow_redirects=True
            ).status_code
            == 404
        )
    assert (public, mapped, private) == (404, 404, 200)
    # An operator who keeps it to the monitoring network only.
    with own_api(settings, database_url, redis_url, metrics_allow_from=["10.0.0.0/8"]) as url:
        assert metrics_status(url) == 404
        assert httpx.get(url + "/healthz").status_code == 200  # nothing else changes


def test_metrics_token_when_set(settings: Settings, database_url: str, redis_url: str) -> None:
    with own_api(settings, database_url, redis_url, metrics_token=METRICS_TOKEN) as url:
        assert metrics_status(url) == 404
        assert metrics_status(url, Authorization="Bearer " + "x" * 24) == 404
        assert metrics_status(url, Authorization=METRICS_TOKEN) == 404
        assert metrics_status(url, Authorization="Bearer " + METRICS_TOKEN) == 200
    with pytest.raises(ConfigError, match="MYSETLIST_METRICS_TOKEN"):
        load_settings(MYSETLIST_METRICS_TOKEN="short")
    with pytest.raises(ConfigError, match="MYSETLIST_METRICS_ALLOW_FROM"):
        load_settings(MYSETLIST_METRICS_ALLOW_FROM="10.0.0.0/8,the-office")


@contextmanager
def serving(args: list[str], env: dict[str, str], out: Path) -> Iterator[tuple[Path, Path]]:
    stdout, stderr = out / f"{uuid.uuid4().hex}.out", out / f"{uuid.uuid4().hex}.err"
    with stdout.open("wb") as o, stderr.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mysetlist", "serve", *args], env=env, stdout=o, stderr=e
        )
        try:
            yield stdout, stderr
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.slow
def test_serve_prints_a_token_only_when_asked(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(tmp_path),
        "JWT_SECRET": TEST_JWT_SECRET,
        "MYSETLIST_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
    }
    with serving(["--port", str(free_port())], env, tmp_path) as (stdout, stderr):
        wait_until(lambda: "mysetlist token" in stderr.read_text(), "serve's banner", within=90)
    assert "export TOKEN=" not in stdout.read_text()
    assert "eyJ" not in stdout.read_text() + stderr.read_text()
    with serving(["--port", str(free_port()), "--print-token"], env, tmp_path) as (stdout, _):
        line = wait_until(
            lambda: [x for x in stdout.read_text().splitlines() if x.startswith("export TOKEN=")],
            "the token line",
            within=90,
        )
    assert line[0].removeprefix("export TOKEN=").startswith("eyJ")
