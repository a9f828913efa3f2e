from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from mysetlist.core.config import ConfigError, load_settings


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


def test_cli_fails_with_one_clear_line(tmp_path: object) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mysetlist", "migrate"],
        env={"ANALYTICS_BATCH_SIZE": "many", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
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
    assert httpx.get(f"{api_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    assert httpx.get(f"{api_url}/openapi.json").json()["info"]["title"].startswith("MySetlist")
    assert httpx.get(f"{api_url}/docs").status_code == 200


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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ETL_PARALLELISM", "x"),
        ("ETL_INCREMENTAL_CRON", "bad"),
        ("MYSETLIST_RATE_LIMIT_USER", "zzz"),
    ],
)
def test_capability_settings_are_checked_at_start(variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mysetlist", "token", "00000000-0000-4000-8000-000000000001"],
        env={variable: value, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""  # no token minted
    assert result.stderr.startswith(f"configuration error: {variable}: ")
    assert len(result.stderr.strip().splitlines()) == 1
