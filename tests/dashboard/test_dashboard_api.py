"""The dashboard's JSON: who may read it, what bad input gets, and that its numbers are the
ones computed here from the seeded world's raw rows."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from mysetlist.core.auth import mint_token
from mysetlist.core.db import Database
from mysetlist.dashboard.panels import BY_NAME, query_panel, window
from mysetlist.dashboard.sessions import COOKIE, create_login_link
from tests.conditions import wait_until
from tests.dashboard.conftest import OPERATOR_ID, World

pytestmark = pytest.mark.db


def operator(world: World) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_token(world.settings, OPERATOR_ID, admin=True)}


def operator_session(world: World) -> str:
    """A dashboard session id, opened the way an operator does (a one-time link)."""
    link = create_login_link(world.url, OPERATOR_ID, ttl_seconds=60, public_url=world.api)
    r = httpx.get(link)
    assert r.status_code == 303, r.text
    return r.cookies[COOKIE]


def login_form_csrf(client: httpx.Client) -> str:
    """The login form's CSRF field (the client keeps the cookie it is checked against)."""
    page = client.get("/dashboard")
    assert page.status_code == 401
    return page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


def get_dashboard(world: World, range_: str = "30d", **params: str) -> dict[str, Any]:
    r = httpx.get(f"{world.api}/api/analytics/dashboard", params={"range": range_, **params},
                  headers=operator(world), timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_401_without_token_403_for_a_fan(dashboard_world: World) -> None:
    url = f"{dashboard_world.api}/api/analytics/dashboard"
    r = httpx.get(url)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    fan = mint_token(dashboard_world.settings, dashboard_world.users[0])
    assert httpx.get(url, headers={"Authorization": f"Bearer {fan}"}).status_code == 403
    for path in ("/panels/realtime", "/stream"):
        assert httpx.get(url + path, headers={"Authorization": f"Bearer {fan}"}).status_code == 403
    r = httpx.post(
        f"{dashboard_world.api}/api/analytics/etl", headers={"Authorization": f"Bearer {fan}"}
    )
    assert r.status_code == 403


def test_bad_range_time_zone_and_panel_are_422_and_404(dashboard_world: World) -> None:
    url = f"{dashboard_world.api}/api/analytics/dashboard"
    headers = operator(dashboard_world)
    r = httpx.get(url, params={"range": "1y"}, headers=headers)
    assert r.status_code == 422
    assert "24h, 7d, 30d, 90d" in r.json()["detail"]
    r = httpx.get(url, params={"tz": "Mars/Olympus"}, headers=headers)
    assert r.status_code == 422
    assert r.json()["field"] == "tz"
    assert httpx.get(url + "/panels/nope", headers=headers).status_code == 404


def test_every_panel_has_data_and_no_error(dashboard_world: World) -> None:
    panels = get_dashboard(dashboard_world)["panels"]
    for name, panel in panels.items():
        assert "error" not in panel, (name, panel)
        assert panel["title"]
        assert panel["unit"]
        if name != "realtime":  # the live panel is empty until the live test posts events
            assert "empty" not in panel, (name, panel)


def test_numbers_match_the_raw_rows(dashboard_world: World) -> None:
    w = dashboard_world
    doc = get_dashboard(w, "30d")
    since_day = (w.now - timedelta(days=30)).date()
    panels = doc["panels"]

    # DAU per day: distinct users with an event that UTC day.
    dau: dict[str, set[str]] = defaultdict(set)
    for uid, _, when, _ in w.events:
        dau[when.date().isoformat()].add(uid)
    got = {r["day"]: r["dau"] for r in panels["active_users"]["data"] if r["dau"]}
    assert got == {d: len(u) for d, u in dau.items() if d >= since_day.isoformat()}

    # Users active in the range, in the engagement distribution.
    active = {uid for uid, _, when, _ in w.events if when.date() >= since_day}
    dist = panels["engagement_distribution"]["data"]
    assert dist["users"] == len(active) == sum(b["users"] for b in dist["buckets"])

    # Events per hour over the last 24 h (the hourly rollup of the same rows).
    # (the oldest hour is left out: it straddles the 24 h edge, which moves as we run)
    first = (w.now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    per_hour: dict[str, int] = defaultdict(int)
    for _, _, when, _ in w.events:
        hour = when.replace(minute=0, second=0, microsecond=0)
        if hour >= first:
            per_hour[hour.isoformat()[:13]] += 1
    got_hours = {r["hour"][:13]: r["events"] for r in panels["realtime_hourly"]["data"]
                 if r["hour"][:13] >= first.isoformat()[:13]}  # fmt: skip
    assert got_hours == dict(per_hour)

    # Churn: the latest predictions, bucketed; the riskiest first.
    churn = panels["churn_risk"]["data"]
    assert churn["users"] == len(w.churn)
    assert churn["buckets"]["high"] == sum(p >= 0.7 for p in w.churn.values())
    top = max(w.churn, key=lambda u: w.churn[u])
    assert churn["most_at_risk"][0]["user_id"] == top

    # Votes per day: the votes stored (a fan's pick of a song for a show counts once, the
    # first time), by day.
    first_pick: dict[tuple[str, int, int], Any] = {}
    for uid, kind, when, props in sorted(w.events, key=lambda e: e[2]):
        if kind == "vote":
            first_pick.setdefault((uid, props["show_id"], props["song_id"]), when.date())
    votes: dict[str, int] = defaultdict(int)
    for day in first_pick.values():
        if day >= since_day:
            votes[day.isoformat()] += 1
    got_votes = {r["day"]: r["votes"] for r in panels["voting"]["data"]["per_day"]}
    assert {d: n for d, n in got_votes.items() if n} == dict(votes)
    accuracy = {a["predictor"]: a["f1"] for a in panels["voting"]["data"]["accuracy"]}
    assert accuracy == {"model": 0.8, "crowd": 0.6, "blend": 0.7}

    notes = panels["notifications"]["data"]
    assert notes["totals"]["sent"] == w.notifications_sent
    assert notes["bounce_rate"] == round(10 / w.notifications_sent, 4)
    assert [m["name"] for m in panels["models"]["data"]] == ["churn"]
    assert panels["etl_runs"]["data"][0]["status"] == "succeeded"
    assert panels["database"]["data"]["database_bytes"] > 0


def test_answer_is_cached_for_a_short_while(dashboard_world: World) -> None:
    first = get_dashboard(dashboard_world, "7d", tz="Europe/Oslo")
    with psycopg.connect(dashboard_world.url) as conn:
        conn.execute("DELETE FROM analytics.ml_models")
    try:
        again = get_dashboard(dashboard_world, "7d", tz="Europe/Oslo")
        assert again["generated_at"] == first["generated_at"]  # from Redis, not re-queried
        live = httpx.get(f"{dashboard_world.api}/api/analytics/dashboard/panels/models",
                         headers=operator(dashboard_world)).json()  # fmt: skip
        assert "empty" in live
        assert "mysetlist ml" in live["empty"]
    finally:
        with psycopg.connect(dashboard_world.url) as conn:
            conn.execute(
                "INSERT INTO analytics.ml_models (name, version, metrics, primary_metric, active,"
                " decision) VALUES ('churn', 3, '{\"roc_auc\": 0.83}', 'roc_auc', true, 'better')"
            )


def test_login_link_works_once_and_not_after_expiry(dashboard_world: World) -> None:
    w = dashboard_world
    link = create_login_link(w.url, OPERATOR_ID, ttl_seconds=60, public_url=w.api)
    with httpx.Client() as client:
        r = client.get(link)
        assert r.status_code == 303
        assert r.headers["location"] == "/dashboard"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie.replace("Strict", "strict")
        assert client.get(w.api + "/dashboard").status_code == 200
        assert client.get(w.api + "/api/analytics/dashboard?range=24h").status_code == 200
    with httpx.Client() as client:
        assert client.get(link).status_code == 401  # used
        assert client.get(w.api + "/dashboard").status_code == 401  # the login form
    expired = create_login_link(w.url, OPERATOR_ID, ttl_seconds=60, public_url=w.api)
    with psycopg.connect(w.url) as conn:
        conn.execute(
            "UPDATE analytics.dashboard_login_links SET expires_at = now() - interval '1 s'"
        )
    assert httpx.get(expired).status_code == 401
    with psycopg.connect(w.url) as conn:
        stored = conn.execute("SELECT token_hash FROM analytics.dashboard_login_links").fetchall()
    assert all(expired.rsplit("/", 1)[1].encode() not in bytes(h) for (h,) in stored)


def test_state_changing_buttons_need_the_csrf_token(dashboard_world: World) -> None:
    w = dashboard_world
    session = operator_session(w)
    with httpx.Client(base_url=w.api, cookies={COOKIE: session}) as client:
        r = client.post("/api/analytics/etl")
        assert r.status_code == 403
        assert "CSRF" in r.json()["detail"]
        r = client.post("/api/analytics/etl", headers={"X-CSRF-Token": "0" * 64})
        assert r.status_code == 403
        with psycopg.connect(w.url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM analytics.etl_runs WHERE status = 'queued'"
            ).fetchone() == (0,)


def test_the_page_session_starts_and_cancels_through_the_warehouse_endpoint(
    dashboard_world: World,
) -> None:
    """The page's buttons call the warehouse's own endpoint with the cookie and the page's
    CSRF token (as dashboard.js does): there is no second ETL endpoint in the dashboard."""
    w = dashboard_world
    with httpx.Client(base_url=w.api, cookies={COOKIE: operator_session(w)}) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        assert client.post("/api/analytics/dashboard/etl").status_code in (404, 405)
        started = client.post("/api/analytics/etl", headers={"X-CSRF-Token": csrf})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.json()["run"]["requested_by"] == OPERATOR_ID
        again = client.post("/api/analytics/etl", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 409
        assert again.json()["active_run_id"] == run_id
        cancelled = client.delete("/api/analytics/etl", headers={"X-CSRF-Token": csrf})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json() == {**cancelled.json(), "run_id": run_id, "status": "cancelled"}
        nothing = client.delete("/api/analytics/etl", headers={"X-CSRF-Token": csrf})
        assert nothing.status_code == 404
        assert nothing.json()["detail"] == "no ETL run is queued or running"
    # Other tests of this module read the newest run as the world's own succeeded one.
    with psycopg.connect(w.url) as conn:
        conn.execute("DELETE FROM analytics.etl_runs WHERE id = %s", (run_id,))


def test_pasted_jwt_login_and_non_operator_refused(dashboard_world: World) -> None:
    w = dashboard_world
    fan = mint_token(w.settings, str(uuid.uuid4()))
    op = mint_token(w.settings, OPERATOR_ID, admin=True)
    with httpx.Client(base_url=w.api) as client:
        csrf = login_form_csrf(client)
        r = client.post("/dashboard/login", data={"token": fan, "csrf": csrf})
        assert r.status_code == 403
        assert "not an operator" in r.text
        r = client.post("/dashboard/login", data={"token": "garbage", "csrf": csrf})
        assert r.status_code == 401
        r = client.post("/dashboard/login", data={"token": op, "csrf": csrf})
        assert r.status_code == 303
        session = r.cookies[COOKIE]
        assert session != op  # a session id, not the pasted JWT
        page = client.get("/dashboard")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


def test_dashboard_link_command_prints_a_working_url_last(dashboard_world: World) -> None:
    import os
    import subprocess
    import sys

    w = dashboard_world
    env = {**os.environ, "DATABASE_URL": w.url, "REDIS_URL": str(w.settings.redis_url),
           "JWT_SECRET": w.settings.effective_jwt_secret,
           "MYSETLIST_DATA_DIR": str(w.settings.data_dir)}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mysetlist", "dashboard-link", "--operator", OPERATOR_ID,
         "--url", w.api],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip().splitlines()[-1]
    assert link.startswith(w.api + "/dashboard/login/")
    with httpx.Client() as client:
        assert client.get(link).status_code == 303
        assert client.get(w.api + "/api/analytics/dashboard?range=24h").status_code == 200


def test_markup_in_data_cannot_end_the_json_island(dashboard_world: World) -> None:
    w = dashboard_world
    evil = "</script><script>alert(1)</script><!--"
    with psycopg.connect(w.url) as conn:
        conn.execute("UPDATE app.users SET display_name = %s", (evil,))
    page = httpx.get(w.api + "/dashboard?range=90d", cookies={COOKIE: operator_session(w)}).text
    island = page.split('id="dashboard-data">', 1)[1].split("</script>", 1)[0]
    assert "\\u003c/script>\\u003cscript>alert(1)" in island  # the whole name, escaped
    assert page.count("<script") == 3  # the island and our two script files, nothing else


def _security_from_audit_rows(url: str, since: datetime) -> dict[str, Any]:
    """The security panel's figures, computed here from the raw audit rows."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT at, action, details FROM analytics.audit_log WHERE at >= %s", (since,)
        ).fetchall()

    def source(details: dict[str, Any]) -> str:
        if "source" in details:
            return str(details["source"])
        parts = [p for p in str(details.get("path", "")).split("/") if p]
        return (parts[1] if len(parts) >= 2 and parts[0] == "api" else (parts or ["root"])[0])[:32]

    kinds = ("auth_failed", "forbidden", "rate_limited", "webhook_signature")
    by_source: dict[tuple[str, str], int] = defaultdict(int)
    per_hour: dict[tuple[datetime, str], int] = defaultdict(int)
    actions: dict[str, int] = defaultdict(int)
    alerts = []
    for at, action, details in rows:
        actions[action] += 1
        kind = action.removeprefix("security.")
        if kind in kinds:
            by_source[(kind, source(details))] += 1
            per_hour[(at.astimezone(UTC).replace(minute=0, second=0, microsecond=0), kind)] += 1
        if action == "security.alert":
            alerts.append((at, details["kind"], source(details), details["per_minute"]))
        if action == "privacy.erasure_requested" and not details.get("created"):
            actions[action] -= 1  # a repeated request for the same erasure
    return {
        "totals": {**{k: actions[f"security.{k}"] for k in kinds},
                   "alerts": actions["security.alert"], "exports": actions["privacy.export"],
                   "erasures_requested": actions["privacy.erasure_requested"],
                   "erasures_done": actions["privacy.erasure_done"]},
        "by_source": dict(by_source),
        "over_time": dict(per_hour),
        "recent_alerts": sorted(alerts, reverse=True)[:10],
    }  # fmt: skip


def _security_as_shown(panel: dict[str, Any]) -> dict[str, Any]:
    d = panel["data"]
    return {
        "totals": d["totals"],
        "by_source": {(r["kind"], r["source"]): r["events"] for r in d["by_source"]},
        "over_time": {(datetime.fromisoformat(r["at"]), r["kind"]): r["events"]
                      for r in d["over_time"]},
        "recent_alerts": [(datetime.fromisoformat(a["at"]), a["kind"], a["source"],
                           a["per_minute"]) for a in d["recent_alerts"]],
    }  # fmt: skip


def test_security_panel_counts_the_audit_trail(dashboard_world: World) -> None:
    w = dashboard_world
    url = f"{w.api}/api/analytics/dashboard/panels/security"

    def shown_and_expected() -> tuple[dict[str, Any], dict[str, Any]] | None:
        # Other tests' refusals are audited in the background: compare once nothing moves.
        # (every audit row of this world is minutes old: the 24 h edge cuts none of them)
        r = httpx.get(url, params={"range": "24h"}, headers=operator(w), timeout=30)
        assert r.status_code == 200, r.text
        panel: dict[str, Any] = r.json()
        expected = _security_from_audit_rows(w.url, datetime.now(UTC) - timedelta(hours=24))
        last[:] = [_security_as_shown(panel), expected]
        return (panel, expected) if last[0] == expected else None

    last: list[dict[str, Any]] = []
    try:
        panel, shown = wait_until(shown_and_expected, "the security panel to match the audit rows")
    except AssertionError:
        assert last[0] == last[1]  # pytest shows where the panel and the rows differ
        raise
    assert "empty" not in panel
    assert "error" not in panel
    assert panel["section"] == "system"
    assert panel["data"]["bucket"] == "hour"
    # What the fixture caused through the real paths is there, under the right source.
    for (kind, source), n in w.security_caused.items():
        assert shown["by_source"][(kind, source)] >= n, (kind, source)
    assert shown["by_source"][("webhook_signature", "ses")] == 1
    assert shown["totals"]["exports"] >= w.exports > 0
    assert shown["totals"]["erasures_requested"] >= 1
    assert shown["recent_alerts"][0][1:] == ("auth_failed", "privacy", 100)
    assert "127.0.0.1" not in orjson.dumps(panel).decode()  # no IP (personal data) shown


async def test_security_panel_says_what_it_watches_when_nothing_happened(
    dashboard_world: World,
) -> None:
    db = Database(dashboard_world.url, max_size=1)
    await db.open()
    try:
        later = window("24h", "UTC", now=dashboard_world.now + timedelta(days=3650))
        panel = await query_panel(db, BY_NAME["security"], later, 5000)
    finally:
        await db.close()
    assert panel["data"]["entries"] == 0
    assert panel["data"]["by_source"] == []
    assert panel["data"]["recent_alerts"] == []
    for watched in ("failed authentications", "refusals (403)", "rate-limit", "webhook", "alert",
                    "exports", "erasures"):  # fmt: skip
        assert watched in panel["empty"]
