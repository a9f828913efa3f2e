"""A small seeded world in a database of its own (so every figure is known), loaded by the
real warehouse ETL and hourly rollup, with the API serving it under a real uvicorn.

Raw rows are kept on the fixture so tests compute the expected numbers from them, not from
the warehouse. Tables of capabilities still being built (churn predictions, setlist scores,
notification analytics, models) are seeded directly with known rows.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from mysetlist.core.auth import mint_token
from mysetlist.core.config import Settings, load_settings
from mysetlist.core.db import Database
from mysetlist.tracking.config import load_tracking_settings
from mysetlist.tracking.maintenance import rollup_hourly
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.pipeline import RunRequest, execute
from tests.conditions import wait_until
from tests.conftest import TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, migrated_database, serve_app

OPERATOR_ID = "00000000-0000-4000-8000-0000000000aa"
GENRES = ("rock", "pop", "jazz", "indie")


@dataclass
class World:
    url: str
    api: str
    settings: Settings
    now: datetime
    users: list[str]
    # (user_id, event_type, created_at, properties)
    events: list[tuple[str, str, datetime, dict[str, Any]]] = field(default_factory=list)
    churn: dict[str, float] = field(default_factory=dict)
    notifications_sent: int = 0
    # Security events caused through the real paths: (kind, source) -> count.
    security_caused: dict[tuple[str, str], int] = field(default_factory=dict)
    exports: int = 0


def _seed(url: str, now: datetime, rng: random.Random) -> World:
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(40)]
    world = World(url, "", load_settings(), now, users)
    with psycopg.connect(url) as conn:
        for i, uid in enumerate(users):
            conn.execute(
                "INSERT INTO app.users (id, display_name, created_at) VALUES (%s, %s, %s)",
                (uid, f"fan {i:02d}", now - timedelta(days=rng.randint(20, 60))),
            )
        conn.execute(
            "INSERT INTO app.users (id, display_name) VALUES (%s, 'operator')", (OPERATOR_ID,)
        )
        for a in range(1, 6):
            conn.execute(
                "INSERT INTO app.artists (id, name, genres) VALUES (%s, %s, %s)",
                (a, f"Artist {a}", [GENRES[a % 4], GENRES[(a + 1) % 4]]),
            )
        conn.execute(
            "INSERT INTO app.venues (id, name, city, country) VALUES (1, 'Hall', 'Oslo', 'NO')"
        )
        for s in range(1, 7):
            starts = now - timedelta(days=10 - s) if s <= 3 else now + timedelta(days=s)
            status = "completed" if s <= 3 else "scheduled"
            conn.execute(
                "INSERT INTO app.shows (id, artist_id, venue_id, starts_at, status)"
                " VALUES (%s, %s, 1, %s, %s)",
                (s, (s - 1) % 5 + 1, starts, status),
            )
            conn.execute(
                "INSERT INTO app.songs (id, artist_id, title) VALUES (%s, %s, %s)",
                (s, (s - 1) % 5 + 1, f"song {s}"),
            )
        # Events: each user is active on a few random days of the last 28 (none in the last
        # 2 hours, so the live test's events are the only live ones).
        for uid in users:
            for _ in range(rng.randint(1, 6)):
                day_start = (now - timedelta(days=rng.randint(1, 27))).replace(
                    hour=0, minute=0, second=0, microsecond=0
                )
                for _ in range(rng.randint(1, 5)):
                    when = day_start + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
                    kind = rng.choice(("page_view", "show_view", "artist_view", "vote"))
                    show = rng.randint(1, 6)
                    props: dict[str, Any] = {}
                    if kind in ("show_view", "vote"):
                        props = {"show_id": show}
                    if kind == "vote":
                        props["song_id"] = show
                    if kind == "artist_view":
                        props = {"artist_id": rng.randint(1, 5)}
                    world.events.append((uid, kind, when, props))
        # Some activity over the last 20 hours, for the hourly rollup and the heatmap.
        for h in range(3, 20):
            for uid in rng.sample(users, 3):
                when = now - timedelta(hours=h, minutes=rng.randint(0, 59))
                world.events.append((uid, "page_view", when, {}))
        world.events.sort(key=lambda e: e[2])  # votes stored in time order (first pick wins)
        for uid, kind, when, props in world.events:
            conn.execute(
                "INSERT INTO analytics.user_events (user_id, session_id, event_type, page_url,"
                " properties, created_at, received_at) VALUES (%s, %s, %s, '/p', %s, %s, %s)",
                (uid, f"s-{uid[:8]}-{when:%Y%m%d}", kind, Jsonb(props), when, when),
            )
            if kind == "vote":
                conn.execute(
                    "INSERT INTO app.setlist_votes (user_id, show_id, song_id, created_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (uid, props["show_id"], props["song_id"], when),
                )
        # The other capabilities' outputs, with known values.
        for i, uid in enumerate(users[:20]):
            p = round(i / 20, 3)
            world.churn[uid] = p
            bucket = "high" if p >= 0.7 else "medium" if p >= 0.4 else "low"
            conn.execute(
                "INSERT INTO analytics.ml_churn_predictions (as_of, user_id, horizon_days,"
                " probability, risk_bucket, top_features, model_version)"
                " VALUES (%s, %s, 14, %s, %s, %s, 3)",
                (now.date(), uid, p, bucket, Jsonb([{"feature": "days_since_last", "value": 9}])),
            )
        for day_back in range(5):
            for channel, sent in (("email", 30), ("push", 10)):
                world.notifications_sent += sent
                conn.execute(
                    "INSERT INTO notify.notification_analytics (day, type, template_name, channel,"
                    " queued, sent, delivered, opened, clicked, bounced, complained)"
                    " VALUES (%s, 'show_reminder', 'show_reminder', %s, %s, %s, %s, %s, %s, 1, 0)",
                    (
                        (now - timedelta(days=day_back)).date(),
                        channel,
                        sent,
                        sent,
                        sent - 2,
                        sent // 2,
                        sent // 5,
                    ),
                )
        # One email the local outbox took (the outbox panel lists it by file name).
        conn.execute(
            "WITH n AS (INSERT INTO notify.notifications (user_id, type, category, title, message)"
            " VALUES (%s, 'show_reminder', 'show_reminders', 't', 'm') RETURNING id)"
            " INSERT INTO notify.notification_delivery (notification_id, user_id, channel,"
            " recipient, status, provider, provider_message_id, sent_at)"
            " SELECT id, %s, 'email', 'hash', 'sent', 'outbox', 'outbox-test.eml', %s FROM n",
            (users[0], users[0], now - timedelta(hours=1)),
        )
        conn.execute(
            "INSERT INTO analytics.ml_models (name, version, metrics, primary_metric, active,"
            " decision) VALUES ('churn', 3, '{\"roc_auc\": 0.83}', 'roc_auc', true, 'better')"
        )
    return world


async def _load(url: str, now: datetime) -> None:
    result = await execute(
        url, EtlConfig(parallelism=2),
        request=RunRequest(trigger="cli", mode="range", from_day=(now - timedelta(days=35)).date(),
                           to_day=now.date(), steps=None),
    )  # fmt: skip
    assert result is not None
    db = Database(url, max_size=2)
    await db.open()
    try:
        await rollup_hourly(db, load_tracking_settings(), now=now, lag=timedelta(0))
    finally:
        await db.close()
    # Scores seeded after the ETL, whose scoring step rewrites the scores of played shows.
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for show in (1, 2, 3):
            for predictor, f1 in (("model", 0.8), ("crowd", 0.6), ("blend", 0.7)):
                await conn.execute(
                    "INSERT INTO analytics.setlist_prediction_scores (show_id, predictor,"
                    " voters, songs_played, hits, f1, ndcg, recall_at_10)"
                    " VALUES (%s, %s, 5, 10, 8, %s, %s, %s)",
                    (show, predictor, f1, f1, f1),
                )


@pytest.fixture(scope="module")
def dashboard_world(servers: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import asyncio

    from mysetlist.api import create_app

    now = datetime.now(UTC)
    with migrated_database(servers.admin_url, "mysetlist_dash") as url:
        world = _seed(url, now, random.Random(11))
        asyncio.run(_load(url, now))
        settings = load_settings(
            DATABASE_URL=url, REDIS_URL=servers.redis_url,
            MYSETLIST_DATA_DIR=str(tmp_path_factory.mktemp("dashdata")),
            JWT_SECRET=TEST_JWT_SECRET, MYSETLIST_ENCRYPTION_KEY=TEST_ENCRYPTION_KEY,
            # A key prefix of its own: the Redis is the test process's, and another module's
            # API on another database caches its own dashboard document under the same
            # range and time zone (the fuzzing operator asks for 30d, too).
            MYSETLIST_REDIS_KEY_PREFIX=f"dash-{uuid.uuid4().hex[:10]}",
        )  # fmt: skip
        world.settings = settings
        with serve_app(create_app(settings, url, servers.redis_url)) as api:
            world.api = api
            _security_traffic(world)
            yield world


def _security_traffic(world: World) -> None:
    """Security events through the real paths (bad tokens, a fan on operator routes, an
    export past its rate limit, an erasure, a webhook that is not genuine), then one alert
    entry as privacy/monitoring writes it (a real one needs a flood of 100 requests, which
    would also move the alert window other tests in this process rely on)."""
    caused: dict[tuple[str, str], int] = {}

    def expect(status: int, r: httpx.Response, kind: str | None, source: str) -> None:
        assert r.status_code == status, r.text
        if kind:
            caused[(kind, source)] = caused.get((kind, source), 0) + 1

    forged = {"Authorization": "Bearer forged.token.here"}
    fan = {"Authorization": "Bearer " + mint_token(world.settings, world.users[0])}
    with httpx.Client(base_url=world.api, timeout=30) as client:
        for _ in range(3):
            expect(401, client.get("/api/privacy/export", headers=forged), "auth_failed", "privacy")
        for _ in range(2):
            r = client.get("/api/analytics/dashboard", headers=forged)
            expect(401, r, "auth_failed", "analytics")
            expect(403, client.get("/api/privacy/audit", headers=fan), "forbidden", "privacy")
        expect(403, client.get("/api/analytics/dashboard", headers=fan), "forbidden", "analytics")
        # A caller of its own (the rate limit lives in Redis, shared by test modules).
        exporter = {"Authorization": "Bearer " + mint_token(world.settings, str(uuid.uuid4()))}
        while (r := client.get("/api/privacy/export", headers=exporter)).status_code == 200:
            world.exports += 1
            assert world.exports < 100, "the export rate limit never answered 429"
        expect(429, r, "rate_limited", "privacy")
        eraser = {"Authorization": "Bearer " + mint_token(world.settings, str(uuid.uuid4()))}
        expect(202, client.delete("/api/privacy/me", headers=eraser), None, "privacy")
        r = client.post("/api/webhooks/ses", content=b"not an SNS message")
        expect(400, r, "webhook_signature", "ses")
    world.security_caused = caused
    with psycopg.connect(world.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO analytics.audit_log (action, outcome, details) VALUES"
            " ('security.alert', 'failure', %s)",
            (Jsonb({"method": "GET", "path": "/api/privacy/export", "status": 401,
                    "kind": "auth_failed", "per_minute": 100}),),
        )  # fmt: skip

        def landed() -> bool:
            # The 401/403/429 entries are written in the background after the answer.
            rows = conn.execute(
                "SELECT action, count(*) FROM analytics.audit_log GROUP BY action"
            ).fetchall()
            got: dict[str, int] = dict(rows)
            return all(
                got.get(f"security.{kind}", 0)
                >= sum(n for (k, _), n in caused.items() if k == kind)
                for kind, _ in caused
            )

        wait_until(landed, "the audit entries of the security traffic", within=15)
