"""The dashboard in a real browser: the system's Chromium (Debian package `chromium`)
driven by Playwright. Screenshots land in `test-artifacts/dashboard/` (look at them)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mysetlist.core.auth import mint_token
from mysetlist.dashboard.sessions import COOKIE, create_login_link
from tests.dashboard.conftest import OPERATOR_ID, World

pytestmark = [pytest.mark.db, pytest.mark.slow]

CHROMIUM = os.environ.get("MYSETLIST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("MYSETLIST_TEST_ARTIFACTS", "test-artifacts")) / "dashboard"
ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, dashboard_world: World) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: pg.console_errors.append(str(e)))
    yield pg
    context.close()


def login(page: Any, world: World) -> None:
    link = create_login_link(world.url, OPERATOR_ID, ttl_seconds=60, public_url=world.api)
    page.goto(link)
    assert page.url == world.api + "/dashboard"  # the token left the address bar
    page.wait_for_selector("#panel-models[data-state]")


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_every_panel_renders_without_console_errors(page: Any, dashboard_world: World) -> None:
    login(page, dashboard_world)
    page.goto(dashboard_world.api + "/dashboard?range=30d")
    page.wait_for_selector("#panel-models[data-state]")
    states = page.eval_on_selector_all(
        "article.panel", "els => els.map(e => [e.dataset.panel, e.dataset.state])"
    )
    assert len(states) == 19
    not_ready = [(n, s) for n, s in states if s != "ready" and n != "realtime"]
    assert not_ready == []
    assert page.locator("canvas").count() >= 12  # every chart drew
    page.wait_for_selector("#live-status[data-state=open]")
    shot(page, "laptop")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.querySelector('canvas').width < 700")
    shot(page, "phone")
    assert page.console_errors == []


def test_a_live_counter_moves_when_events_arrive(page: Any, dashboard_world: World) -> None:
    w = dashboard_world
    login(page, w)
    counter = page.get_by_test_id("live-events_last_hour")
    before = int("".join(ch for ch in counter.inner_text() if ch.isdigit()) or 0)
    fan = mint_token(w.settings, w.users[0])
    events = [{"event_type": "page_view", "page_url": "/live"} for _ in range(5)]
    r = httpx.post(f"{w.api}/api/analytics/events", json={"events": events},
                   headers={"Authorization": f"Bearer {fan}"})  # fmt: skip
    assert r.status_code == 202, r.text
    # The SSE update redraws the tile: look it up afresh each time.
    page.wait_for_function(
        "n => { const el = document.querySelector('[data-testid=live-events_last_hour]');"
        " return el && Number(el.textContent.replace(/[^0-9]/g, '')) >= n; }",
        arg=before + 5, timeout=20_000,
    )  # fmt: skip
    shot(page, "live")
    assert page.console_errors == []


def test_run_etl_button_shows_the_new_run(page: Any, dashboard_world: World) -> None:
    login(page, dashboard_world)
    first_row = page.locator("#panel-etl_runs tbody tr").first
    previous = first_row.locator("td").first.inner_text()
    page.click("#run-etl")
    page.wait_for_function(
        "prev => { const td = document.querySelector('#panel-etl_runs tbody tr td');"
        " return td && td.textContent !== prev; }", arg=previous, timeout=20_000,
    )  # fmt: skip
    assert first_row.locator("td").nth(1).inner_text() in ("queued", "running")
    page.click("#cancel-etl")
    page.wait_for_function(
        "() => document.querySelector('#panel-etl_runs tbody tr td:nth-child(2)')"
        ".textContent === 'cancelled'", timeout=20_000,
    )  # fmt: skip
    shot(page, "etl")
    assert page.console_errors == []


def test_a_non_operator_is_refused(page: Any, dashboard_world: World) -> None:
    w = dashboard_world
    page.goto(w.api + "/dashboard")
    assert page.locator("form textarea#token").is_visible()  # the login form
    page.fill("#token", mint_token(w.settings, str(uuid.uuid4())))
    page.click("form button[type=submit]")
    page.wait_for_selector("text=not an operator")
    assert page.locator("#panel-models").count() == 0
    shot(page, "refused")


def test_pasted_operator_jwt_signs_in_and_sign_out_ends_the_session(
    page: Any, dashboard_world: World
) -> None:
    w = dashboard_world
    page.goto(w.api + "/dashboard")
    page.fill("#token", mint_token(w.settings, OPERATOR_ID, admin=True))
    page.click("form button[type=submit]")  # the form carries its CSRF field
    page.wait_for_selector("#panel-models[data-state]")
    session = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)
    assert not session.startswith("eyJ")  # an opaque id, no JWT
    # The login form itself is answered with 401; nothing else may fail.
    assert all("status of 401" in e for e in page.console_errors), page.console_errors
    page.wait_for_selector("#live-status[data-state=open]")
    page.click("form[action='/dashboard/logout'] button")
    page.wait_for_selector("form textarea#token")  # back at the login form (answered 401)
    r = httpx.get(f"{w.api}/api/analytics/dashboard?range=24h", cookies={COOKIE: session})
    assert r.status_code == 401  # the old cookie opens nothing after sign-out
    assert all("status of 401" in e for e in page.console_errors), page.console_errors
