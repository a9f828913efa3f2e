from __future__ import annotations

import multiprocessing
import re
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from mysetlist.core.config import ConfigError, Settings, load_settings
from tests.conditions import wait_until
from tests.conftest import Servers, free_port, migrated_database, serve_app
from tests.core.test_settings_check import run_cli


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYTICS_BATCH_SIZE", "lots"),
        ("ANALYTICS_BATCH_SIZE", "0"),
        ("ETL_SCHEDULE_CRON", "every night"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("MYSETLIST_ENCRYPTION_KEY", "c2hvcnQ="),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^configuration error: {variable}: "):
        load_settings(**{variable: value})


def test_cli_fails_with_one_clear_line(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "migrate", ANALYTICS_BATCH_SIZE="many")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "configuration error: ANALYTICS_BATCH_SIZE: Input should be a valid integer, "
        "unable to parse string as an integer"
    ]


def test_generated_secrets_are_shared_through_the_data_dir(tmp_path: object) -> None:
    a = load_settings(MYSETLIST_DATA_DIR=str(tmp_path))
    b = load_settings(MYSETLIST_DATA_DIR=str(tmp_path))
    assert a.effective_jwt_secret == b.effective_jwt_secret
    assert len(a.effective_encryption_key) == 32


@pytest.mark.db
def test_health_ready_and_openapi(api_url: str) -> None:
    healthy = {"database": "ok", "redis": "ok"}
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok", "checks": healthy}
    ready = httpx.get(f"{api_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "degraded": False, "checks": healthy}
    assert httpx.get(f"{api_url}/openapi.json").json()["info"]["title"].startswith("MySetlist")
    assert httpx.get(f"{api_url}/docs").status_code == 200


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_pages_may_load_what_they_load(api_url: str, page: str) -> None:
    """The pages' own scripts and styles come from a CDN: their CSP must allow exactly
    those origins (the CSP of other HTML pages would leave them blank)."""
    r = httpx.get(f"{api_url}{page}")
    assert r.status_code == 200
    csp = dict(
        part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
    )
    sources = re.findall(r'<script src="(https://[^/"]+)/', r.text)
    assert sources, "the page loads its scripts from elsewhere than before"
    for origin in sources:
        assert origin in csp["script-src"]
    assert csp["frame-ancestors"] == "'none'"


@pytest.mark.db
def test_errors_are_problem_json_with_request_id(api_url: str) -> None:
    r = httpx.get(f"{api_url}/no/such/route", headers={"X-Request-Id": "abc123"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["x-request-id"] == "abc123"
    assert r.json()["status"] == 404


@pytest.mark.db
def test_body_size_limit(api_url: str) -> None:
    r = httpx.post(f"{api_url}/healthz", content=b"x" * 2_000_000)
    assert r.status_code == 413
    assert r.json()["title"] == "Content Too Large"


def _poll(url: str, done: Callable[[httpx.Response], bool], what: str) -> httpx.Response:
    """GET `url` until `done(response)`; return that response."""

    def answered() -> httpx.Response | None:
        response = httpx.get(url, timeout=5)
        return response if done(response) else None

    return wait_until(answered, what)


@pytest.mark.db
def test_ready_but_degraded_while_redis_is_down(
    settings: Settings, database_url: str, token_for: Any
) -> None:
    from mysetlist.api import create_app

    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    with serve_app(create_app(settings, database_url, nobody_listens)) as url:
        # Once the background probe has tried Redis, readiness says "degraded", not 503.
        ready = _poll(
            f"{url}/readyz", lambda r: r.status_code != 200 or r.json()["degraded"], "degraded"
        )
        assert ready.status_code == 200  # the instance serves: keep it in the load balancer
        body = ready.json()
        assert body["ready"] is True
        assert body["degraded"] is True
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("error: ")
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.elapsed.total_seconds() < 1  # the last probe's result, no slow new one
        # (/metrics: tests/cli/test_api_metrics.py, in a process of its own, as the gauge is
        # per process and the shared test API in this one sets it too.)
        # And what readiness promises holds: ingest works without Redis.
        user = uuid.uuid4()
        posted = httpx.post(
            f"{url}/api/analytics/events",
            json={"event_type": "page_view", "session_id": f"s-{user.hex}"},
            headers={"Authorization": f"Bearer {token_for(user)}"},
            timeout=10,
        )
        assert posted.status_code == 202, posted.text
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM analytics.user_events WHERE user_id = %s", (user,)
        ).fetchone()
    assert row == (1,)


@pytest.mark.db
def test_not_ready_while_the_database_is_unreachable(
    settings: Settings, servers: Servers, redis_url: str
) -> None:
    from mysetlist.api import create_app

    with (
        migrated_database(servers.admin_url, "mysetlist_readyz") as database_url,
        psycopg.connect(servers.admin_url, autocommit=True) as admin,
    ):
        name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
        with serve_app(create_app(settings, database_url, redis_url)) as url:
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            try:
                down = _poll(f"{url}/readyz", lambda r: r.status_code == 503, "not ready")
                assert down.status_code == 503
                assert down.json()["ready"] is False
                assert down.json()["checks"]["database"].startswith("error: ")
                assert down.json()["checks"]["redis"] == "ok"
                assert httpx.get(f"{url}/healthz", timeout=10).json()["status"] == "degraded"
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            # It comes back by itself once the database answers again.
            assert (
                _poll(f"{url}/readyz", lambda r: r.status_code == 200, "ready").status_code == 200
            )


def _secret_in(data_dir: str, ready: Any) -> str:
    ready.wait()  # every process starts generating at once
    return load_settings(MYSETLIST_DATA_DIR=data_dir).effective_jwt_secret


def test_workers_starting_together_agree_on_the_generated_secrets(tmp_path: Path) -> None:
    """`mysetlist api --workers N` on a new data dir: every process generates, one wins the
    link, all read the winner. A temp file shared by name let one process unlink another's
    before it was linked (FileNotFoundError at start)."""
    processes = 8
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(processes, mp_context=context) as pool:
        for attempt in range(5):
            data_dir = tmp_path / f"fresh-{attempt}"
            ready = manager.Barrier(processes)
            found = list(pool.map(_secret_in, [str(data_dir)] * processes, [ready] * processes))
            assert len(set(found)) == 1
            assert sorted(p.name for p in data_dir.iterdir()) == ["secrets.json"]  # no temp
