"""The database's state on /metrics (core/state_metrics.py), against a real PostgreSQL: what
the alert rules in deploy/prometheus/alerts.yml read. Each gauge is seeded into a known
state and read back through the API's /metrics; a database that refuses connections or
does not answer in time shows as mysetlist_state_metrics_up 0 while /metrics answers 200."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict

from mysetlist.core.config import Settings
from mysetlist.core.runtime import Runtime
from mysetlist.core.state_metrics import metric_names, read_state
from tests.conftest import Servers, free_port, serve_app

pytestmark = pytest.mark.db


def scrape(api_url: str) -> dict[str, float]:
    """Every unlabelled sample of /metrics (the state gauges have no labels), by name."""
    response = httpx.get(api_url + "/metrics", timeout=30)
    assert response.status_code == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.labels:
                samples[sample.name] = sample.value
    return samples


async def test_fresh_database_reports_nothing_waiting(api_url: str) -> None:
    samples = scrape(api_url)
    assert samples["mysetlist_state_metrics_up"] == 1
    assert samples["mysetlist_state_etl_last_run_failed"] == 0
    assert samples["mysetlist_state_etl_running_seconds"] == 0
    assert samples["mysetlist_state_notify_deliveries_due"] == 0
    assert samples["mysetlist_state_notify_oldest_due_delivery_seconds"] == 0
    assert samples["mysetlist_state_jobs_oldest_due_seconds"] == 0
    # no run ever succeeded, no daily run loaded a day: absent, not a made-up time
    assert "mysetlist_state_etl_last_success_timestamp_seconds" not in samples
    assert "mysetlist_state_etl_loaded_through_timestamp_seconds" not in samples
    # the process metrics are still all there, before the state
    assert "mysetlist_group_commit_queue_events" in samples


async def test_failed_etl_run_then_a_success(api_url: str, runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, created_at,"
            " started_at, finished_at, checks_status, checks_failed, error)"
            " VALUES ('cli', 'daily', '{}', 'failed', now() - interval '1 hour',"
            " now() - interval '1 hour', now() - interval '50 minutes', 'failed', 2, 'boom')"
        )
    samples = scrape(api_url)
    assert samples["mysetlist_state_etl_last_run_failed"] == 1
    assert samples["mysetlist_state_etl_checks_failed"] == 2

    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, created_at,"
            " started_at, finished_at, checks_status)"
            " VALUES ('schedule', 'daily', '{}', 'succeeded', now() - interval '10 minutes',"
            " now() - interval '10 minutes', now() - interval '5 minutes', 'passed')"
        )
        # a run in progress since 20 minutes
        await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, created_at,"
            " started_at) VALUES ('api', 'range', '{}', 'running', now(),"
            " now() - interval '20 minutes')"
        )
    samples = scrape(api_url)
    assert samples["mysetlist_state_etl_last_run_failed"] == 0
    assert samples["mysetlist_state_etl_checks_failed"] == 0
    assert (
        abs(samples["mysetlist_state_etl_last_success_timestamp_seconds"] - (time.time() - 300))
        < 60
    )
    assert 1190 <= samples["mysetlist_state_etl_running_seconds"] <= 1300
    async with runtime.db.transaction() as conn:
        await conn.execute("DELETE FROM analytics.etl_runs")


async def test_unloaded_events_age_follows_the_watermark(api_url: str, runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.user_events (event_type, created_at, received_at)"
            " VALUES ('page_view', now() - interval '10 minutes', now() - interval '10 minutes')"
        )
        await conn.execute(
            "INSERT INTO analytics.watermarks (name, position, last_full_day)"
            " VALUES ('warehouse.events', now() - interval '20 minutes', current_date - 1)"
        )
    samples = scrape(api_url)
    assert 590 <= samples["mysetlist_state_events_unloaded_age_seconds"] <= 700
    midnight = time.time() // 86400 * 86400  # the end of yesterday, UTC
    assert samples["mysetlist_state_etl_loaded_through_timestamp_seconds"] == midnight

    async with runtime.db.transaction() as conn:  # the incremental run took them
        await conn.execute(
            "UPDATE analytics.watermarks SET position = now() WHERE name = 'warehouse.events'"
        )
    assert scrape(api_url)["mysetlist_state_events_unloaded_age_seconds"] == 0


async def test_due_deliveries_and_their_age(api_url: str, runtime: Runtime) -> None:
    user = uuid.uuid4()
    async with runtime.db.transaction() as conn:
        await conn.execute("INSERT INTO app.users (id, display_name) VALUES (%s, 'u')", (user,))
        await conn.execute(
            "WITH n AS (INSERT INTO notify.notifications (user_id, type, category, title,"
            " message) VALUES (%(u)s, 'vote_results', 'vote_results', 't', 'm') RETURNING id)"
            " INSERT INTO notify.notification_delivery (notification_id, user_id, channel,"
            " recipient, status, next_attempt_at)"
            " SELECT n.id, %(u)s, c.channel, 'r', c.status, now() + c.due"
            "   FROM n, (VALUES ('email', 'queued', interval '-5 minutes'),"
            "                   ('push', 'deferred', interval '-1 minute'),"
            "                   ('in_app', 'deferred', interval '2 hours')) AS c(channel,"
            " status, due)",
            {"u": user},
        )
    samples = scrape(api_url)
    assert samples["mysetlist_state_notify_deliveries_waiting"] == 3
    assert samples["mysetlist_state_notify_deliveries_due"] == 2  # quiet hours: not due yet
    assert 295 <= samples["mysetlist_state_notify_oldest_due_delivery_seconds"] <= 400
    async with runtime.db.transaction() as conn:
        await conn.execute("UPDATE notify.notification_delivery SET status = 'sent'")
    samples = scrape(api_url)
    assert samples["mysetlist_state_notify_deliveries_due"] == 0
    assert samples["mysetlist_state_notify_oldest_due_delivery_seconds"] == 0


async def test_workers_and_due_jobs(api_url: str, runtime: Runtime) -> None:
    async with runtime.db.transaction() as conn:
        await conn.execute("INSERT INTO public.procrastinate_workers DEFAULT VALUES")
        await conn.execute(
            "INSERT INTO public.procrastinate_workers (last_heartbeat)"
            " VALUES (now() - interval '5 minutes')"  # a dead one
        )
        # due for 10 minutes; one scheduled in the future; one due but waiting on a lock a
        # running job holds (not stalled: its turn comes when that job ends)
        await conn.execute(
            "INSERT INTO public.procrastinate_jobs (queue_name, task_name, scheduled_at, lock,"
            " status) VALUES ('q', 't', now() - interval '10 minutes', NULL, 'todo'),"
            " ('q', 't', now() + interval '1 hour', NULL, 'todo'),"
            " ('q', 't', now() - interval '30 minutes', 'held', 'todo'),"
            " ('q', 't', NULL, 'held', 'doing')"
        )
    samples = scrape(api_url)
    assert samples["mysetlist_state_job_workers"] == 1
    assert samples["mysetlist_state_jobs_due"] == 1
    assert 595 <= samples["mysetlist_state_jobs_oldest_due_seconds"] <= 700
    async with runtime.db.transaction() as conn:
        await conn.execute("DELETE FROM public.procrastinate_jobs")
        await conn.execute("DELETE FROM public.procrastinate_workers")


async def test_every_gauge_is_on_metrics_once_seeded(api_url: str, runtime: Runtime) -> None:
    """metric_names() (what the alert-rule test checks rules against) is what /metrics
    shows: a gauge added to GAUGES without its column, or renamed, fails here."""
    async with runtime.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO analytics.etl_runs (trigger, mode, steps, status, finished_at)"
            " VALUES ('cli', 'daily', '{}', 'succeeded', now())"
        )
        await conn.execute(
            "INSERT INTO analytics.watermarks (name, last_full_day) VALUES"
            " ('warehouse.events', current_date - 1) ON CONFLICT (name) DO UPDATE"
            " SET last_full_day = excluded.last_full_day"
        )
    samples = scrape(api_url)
    assert set(metric_names()) <= set(samples)


BEHIND_A_POOLER = bool(
    os.environ.get("DATABASE_DIRECT_URL")
    and os.environ.get("DATABASE_DIRECT_URL") != os.environ.get("DATABASE_URL")
)


@pytest.fixture
def refusing_database(servers: Servers, database_url: str) -> Iterator[str]:
    """The module's database, refusing connections (as a database that is down or full
    does), its open sessions ended."""
    # The embedded servers' URLs carry a socket directory (`?host=/tmp/…`): parse, not split.
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(servers.admin_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
    try:
        yield database_url
    finally:
        with psycopg.connect(servers.admin_url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


# Behind pgbouncer a refused server login puts the pooler's pool for that database into
# server_login_retry, failing the module's later connections: the next test covers the
# same answer there, with the API pointed at a server that is not listening.
@pytest.mark.skipif(BEHIND_A_POOLER, reason="a pooler turns a refusal into its own state")
async def test_database_down_means_up_0_and_metrics_still_answer(
    api_url: str, refusing_database: str
) -> None:
    samples = scrape(api_url)
    assert samples["mysetlist_state_metrics_up"] == 0
    assert "mysetlist_state_etl_last_run_failed" not in samples
    assert "mysetlist_group_commit_queue_events" in samples  # the process's own metrics


async def test_an_unreachable_database_means_up_0_and_metrics_still_answer(
    settings: Settings, database_url: str, redis_url: str
) -> None:
    from mysetlist.api import create_app

    app = create_app(settings, database_url, redis_url, with_worker=False)
    with serve_app(app) as url:
        before = scrape(url)
        assert before["mysetlist_state_metrics_up"] == 1
        # from now on this API process reaches for a server that is not listening
        app.state.runtime = dataclasses.replace(
            app.state.runtime, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        )
        try:
            samples = scrape(url)
        finally:
            app.state.runtime = dataclasses.replace(app.state.runtime, database_url=database_url)
    assert samples["mysetlist_state_metrics_up"] == 0
    assert "mysetlist_state_etl_last_run_failed" not in samples
    assert "mysetlist_group_commit_queue_events" in samples


async def test_unreachable_server_is_up_0(servers: Servers) -> None:
    reading = await read_state(f"postgresql://postgres@127.0.0.1:{free_port()}/x", limit_seconds=1)
    assert reading.row is None


async def test_a_locked_table_times_out_instead_of_holding_the_scrape(
    database_url: str,
) -> None:
    """A statement that waits (here on a lock a migration could hold) gives up after the
    timeout: the scrape answers, saying the state is unknown."""
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE analytics.etl_runs IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        reading = await read_state(database_url, limit_seconds=1)
        assert reading.row is None
        assert time.monotonic() - started < 5
        locker.rollback()
    assert (await read_state(database_url, limit_seconds=1)).row is not None
