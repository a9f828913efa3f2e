"""Load harness (issue 19): simulated fans over real HTTP against the whole system.

    python bench/load.py --users 1000 --minutes 1            # report into docs/performance.md
    python bench/load.py --users 1000 --minutes 1 --json     # last line: one JSON object
    python bench/load.py --users 300 --minutes 4 --chaos     # kill -9 API, worker; restart
                                                            # PostgreSQL; Redis down 30+ s

A chaos run records the Prometheus alerts each fault raises and clears (bench/load_alerts.py):
the topology's (`PROMETHEUS_URL`), or one it starts beside the single install. With `API_URL`
and `MYSETLIST_CLUSTER_DIR` (deploy/local-cluster/up.sh prints both) the faults hit the
topology's own processes (bench/load_chaos.py's `Topology`); its report block is
`chaos-topology`.

Without `API_URL` it starts `mysetlist serve` itself (on `DATABASE_URL`/`REDIS_URL` when
set, else on the program's embedded servers; a chaos run on private servers of its own:
bench/load_chaos.py), seeds a world (bench/load_world.py), runs an SMTP sink (aiosmtpd)
the server mails to, and stops everything at the end. With `API_URL` it loads that server:
the world is seeded through `DATABASE_URL` (also used for the reconciliation counts), and
`JWT_SECRET` and `MYSETLIST_ENCRYPTION_KEY` must be the server's; the server must mail to
the sink on `LOAD_SMTP_PORT` (default 2525).

Each fan, ramped in over a bounded time (`--ramp`): holds a JWT and an open in-app stream
(`GET /api/notifications/stream`, reconnecting with Last-Event-ID as EventSource does); sets
its notification preferences once; then, with think times of seconds (exponential, mean
`--think`), browses predicted setlists and the leaderboard, reads its recommendations,
inbox, unread count, preferences, profile and follows, votes on upcoming shows and follows
artists, and sends what it did as a browser SDK does: a Segment or PostHog batch with the
public browser write key every `--batch-every` seconds, plus occasional single events.
The platform has no HTTP route for votes and follows (the platform app writes them), so
they are written as the app does, in a transaction under the fan's role (as demo/live.py),
and reported apart from the HTTP figures. The platform's backend sends notifications
(vote summaries, new shows, show reminders to followers) through `POST
/api/notifications/send`; a few operators poll the dashboard's panels; the incremental ETL,
the event feeds and the setlist predictions are queued every minute on the server's own job
queue, beside its own schedules (deliveries every 15 s, rollups every 20 s).

The report (bench/load_report.py) goes into docs/performance.md between markers, with
plots in docs/img/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "src"))  # this tree's code, as bench/quick.py
sys.path.insert(0, str(BENCH_DIR))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

import load_alerts  # noqa: E402
import load_chaos  # noqa: E402
import load_report  # noqa: E402
import load_world  # noqa: E402
from load_report import RunStats  # noqa: E402

SITE = "https://mysetlist.app"
NOTIFY_TYPES = ("vote_summary", "new_show_announced")
PANELS = (
    "realtime",
    "realtime_hourly",
    "notifications",
    "etl_runs",
    "job_queue",
    "trending_artists",
    "top_shows",
    "voting",
    "database",
)


# -- the SMTP sink -------------------------------------------------------------------------


class Sink:
    """Every message's X-MySetlist-Delivery id and arrival time (duplicates kept)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, float]] = []
        self.unknown = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        delivery = None
        for line in envelope.content.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"x-mysetlist-delivery:"):
                delivery = int(line.split(b":", 1)[1].strip())
        with self.lock:
            if delivery is None:
                self.unknown += 1
            else:
                self.arrivals.append((delivery, now))
        return "250 OK"


# -- server processes ----------------------------------------------------------------------


class ServerSet:
    """`mysetlist serve` (or `api` + `worker` with --split), restartable after a kill."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        split: bool,
        logdir: Path,
        worker_metrics_port: int | None = None,
    ) -> None:
        self.env, self.port, self.split, self.logdir = env, port, split, logdir
        self.worker_metrics_port = worker_metrics_port
        self.api: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = (self.logdir / f"{name}-{self.starts}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "mysetlist", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_api(self) -> None:
        command = "api" if self.split else "serve"
        self.api = self._spawn([command, "--port", str(self.port)], command)

    def start_worker(self) -> None:
        if self.split:
            metrics = []
            if self.worker_metrics_port is not None:
                metrics = ["--metrics-port", str(self.worker_metrics_port)]
            self.worker = self._spawn(["worker", "--concurrency", "8", *metrics], "worker")

    def pids(self) -> dict[str, int]:
        out = {}
        for name, proc in (("api", self.api), ("worker", self.worker)):
            if proc is not None and proc.poll() is None:
                out[name] = proc.pid
        return out

    def stop(self) -> None:
        for proc in (self.api, self.worker):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.api, self.worker):
            if proc is None:
                continue
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def wait_ready(base: str, within: float = 90) -> float:
    began = time.monotonic()
    async with aiohttp.ClientSession() as s:
        while time.monotonic() - began < within:
            try:
                async with s.get(base + "/readyz") as r:
                    if r.status == 200:
                        return time.monotonic() - began
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{base} did not become ready in {within} s")


# -- the fans ------------------------------------------------------------------------------


class Harness:
    def __init__(
        self,
        args: argparse.Namespace,
        base: str,
        database_url: str,
        cast: load_world.Cast,
        write_key: str,
        settings: Any,
    ) -> None:
        self.args, self.base, self.database_url = args, base, database_url
        self.cast, self.write_key = cast, write_key
        self.settings = settings
        self.tag = uuid.uuid4().hex[:12]
        self.rng = random.Random(7)
        self.stats = RunStats(t0=time.time())
        self.stopping = asyncio.Event()
        self.stream_open = 0
        self._probe: psycopg.AsyncConnection[Any] | None = None
        self.streams_ever = 0
        self.acked: dict[str, float] = {}  # message id -> ack time (s since t0)
        self.stream_seen: dict[int, float] = {}  # notification id -> first receipt (epoch)
        self.stream_dupes = 0
        self.tokens: dict[str, str] = {}
        self.followers: dict[int, list[str]] = defaultdict(list)
        self.seg_auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        for fan in cast.fans:
            for artist in fan.artists:
                self.followers[artist].append(fan.user_id)

    def now(self) -> float:
        return time.time() - self.stats.t0

    def token(self, user_id: str, role: str = "authenticated", admin: bool = False) -> str:
        from mysetlist.core.auth import mint_token

        key = f"{user_id}:{role}:{admin}"
        if key not in self.tokens:
            self.tokens[key] = mint_token(
                self.settings, user_id, role=role, admin=admin, ttl_seconds=6 * 3600
            )
        return self.tokens[key]

    async def call(
        self, http: aiohttp.ClientSession, route: str, method: str, path: str, **kw: Any
    ) -> tuple[int, Any]:
        """One request: its latency and status recorded under `route` (0: no answer)."""
        self.stats.offered[route] += 1
        began = time.monotonic()
        status, body = 0, None
        try:
            async with http.request(method, self.base + path, **kw) as r:
                status = r.status
                raw = await r.read()
                if raw and r.content_type.endswith("json"):
                    body = orjson.loads(raw)
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            self.stats.transport_errors[f"{route}: {type(exc).__name__}"] += 1
            if len(self.stats.error_examples) < 5:
                self.stats.error_examples.append(f"{route}: {type(exc).__name__}: {exc}"[:200])
        self.stats.record(self.now(), route, status, (time.monotonic() - began) * 1000)
        return status, body

    # one fan ------------------------------------------------------------------------------

    def _event(self, fan: load_world.Fan, kind: str, props: dict[str, Any]) -> dict[str, Any]:
        mid = f"{self.tag}-{uuid.uuid4().hex}"
        return {
            "kind": kind,
            "mid": mid,
            "props": {**props, "load_run": self.tag, "mid": mid},
            "ts": time.time(),
        }

    async def _send_events(
        self,
        http: aiohttp.ClientSession,
        fan: load_world.Fan,
        events: list[dict[str, Any]],
        single: bool = False,
    ) -> None:
        """Segment or PostHog, batch or single, with the public browser write key; a
        browser's user id is only a claim (tracking/identity_rule.py)."""
        anon = f"anon-{fan.user_id[:18]}"
        ts = {e["mid"]: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e["ts"])) for e in events}
        if self.rng.random() < 0.6:
            msgs = [
                {
                    "type": "track",
                    "event": e["kind"],
                    "anonymousId": anon,
                    "userId": fan.user_id,
                    "messageId": e["mid"],
                    "timestamp": ts[e["mid"]],
                    "properties": e["props"],
                }
                for e in events
            ]
            headers = {"Authorization": self.seg_auth}
            if single:
                status, _ = await self.call(
                    http, "POST /v1/track", "POST", "/v1/track", json=msgs[0], headers=headers
                )
            else:
                status, _ = await self.call(
                    http,
                    "POST /v1/batch",
                    "POST",
                    "/v1/batch",
                    json={"batch": msgs},
                    headers=headers,
                )
        else:
            msgs = [
                {
                    "event": e["kind"],
                    "distinct_id": anon,
                    "uuid": str(uuid.uuid4()),
                    "timestamp": ts[e["mid"]],
                    "properties": e["props"],
                }
                for e in events
            ]
            if single:
                status, _ = await self.call(
                    http,
                    "POST /i/v0/e/",
                    "POST",
                    "/i/v0/e/",
                    json={"api_key": self.write_key, **msgs[0]},
                )
            else:
                status, _ = await self.call(
                    http,
                    "POST /batch/",
                    "POST",
                    "/batch/",
                    json={"api_key": self.write_key, "batch": msgs},
                )
        if 200 <= status < 300:
            at = self.now()
            for e in events:
                self.acked[e["mid"]] = at
        else:
            self.stats.events_refused += len(events)

    async def fan(
        self, http: aiohttp.ClientSession, db: Any, fan: load_world.Fan, start_at: float
    ) -> None:
        await asyncio.sleep(max(0.0, start_at - self.now()))
        auth = {"Authorization": f"Bearer {self.token(fan.user_id)}"}
        stream = asyncio.create_task(self.stream(http, fan, auth))
        try:
            await self.call(
                http,
                "PUT /api/notifications/preferences",
                "PUT",
                "/api/notifications/preferences",
                headers=auth,
                json=PREFERENCES,
            )
            pending: list[dict[str, Any]] = []
            rng = random.Random(fan.user_id)
            next_batch = self.now() + rng.uniform(1, self.args.batch_every)
            while not self.stopping.is_set():
                await self.act(http, db, fan, auth, rng, pending)
                if self.now() >= next_batch and pending:
                    batch, pending[:] = list(pending), []
                    await self._send_events(http, fan, batch)
                    next_batch = self.now() + self.args.batch_every * rng.uniform(0.7, 1.3)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self.stopping.wait(), rng.expovariate(1 / self.args.think)
                    )
            if pending:
                await self._send_events(http, fan, pending)  # as a browser flushes on unload
        finally:
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream

    async def act(
        self,
        http: aiohttp.ClientSession,
        db: Any,
        fan: load_world.Fan,
        auth: dict[str, str],
        rng: random.Random,
        pending: list[dict[str, Any]],
    ) -> None:
        shows = [s for s in self.cast.shows if s.artist_id in fan.artists] or self.cast.shows
        show = rng.choice(shows)
        roll = rng.random()
        if roll < 0.30:
            await self.call(
                http,
                "GET predicted-setlist",
                "GET",
                f"/api/shows/{show.id}/predicted-setlist",
                headers=auth,
            )
            pending.append(self._event(fan, "show_view", {"show_id": show.id}))
        elif roll < 0.35:
            await self.call(
                http, "GET leaderboard", "GET", "/api/setlists/leaderboard", headers=auth
            )
            pending.append(self._event(fan, "page_view", {"path": "/leaderboard"}))
        elif roll < 0.45:
            await self.call(
                http, "GET recommendations", "GET", "/api/analytics/recommendations", headers=auth
            )
        elif roll < 0.55:
            await self.call(http, "GET inbox", "GET", "/api/notifications?limit=20", headers=auth)
        elif roll < 0.63:
            await self.call(
                http, "GET unread-count", "GET", "/api/notifications/unread-count", headers=auth
            )
        elif roll < 0.66:
            await self.call(
                http, "GET preferences", "GET", "/api/notifications/preferences", headers=auth
            )
        elif roll < 0.70:
            await self.call(http, "GET me", "GET", "/api/me", headers=auth)
        elif roll < 0.74:
            await self.call(http, "GET me/follows", "GET", "/api/me/follows", headers=auth)
        elif roll < 0.86:
            await self.write(
                db,
                "vote",
                fan.user_id,
                VOTE_SQL,
                {"show_id": show.id, "song_id": rng.choice(show.songs)},
            )
            pending.append(self._event(fan, "vote", {"show_id": show.id}))
        elif roll < 0.91:
            artist = rng.choice(self.cast.artists)
            await self.write(db, "follow", fan.user_id, FOLLOW_SQL, {"artist_id": artist})
            if artist not in fan.artists:
                fan.artists.append(artist)
            pending.append(self._event(fan, "follow", {"artist_id": artist}))
        else:
            await self._send_events(
                http, fan, [self._event(fan, "search", {"query": "tour"})], single=True
            )

    async def write(
        self, db: Any, what: str, user_id: str, sql: str, params: dict[str, Any]
    ) -> None:
        began = time.monotonic()
        ok = True
        try:
            async with asyncio.timeout(30), db.as_user(user_id) as conn:  # as an HTTP call
                await conn.execute(sql, params)
        except Exception as exc:  # a fault run: the app's write fails like any client's
            ok = False
            self.stats.transport_errors[f"db {what}: {type(exc).__name__}"] += 1
        self.stats.record_db(self.now(), what, ok, (time.monotonic() - began) * 1000)

    async def stream(
        self, http: aiohttp.ClientSession, fan: load_world.Fan, auth: dict[str, str]
    ) -> None:
        """The inbox stream, reconnecting after `retry` as EventSource does."""
        last_id: str | None = None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
        while True:
            headers = dict(auth, Accept="text/event-stream")
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            opened = False
            began = time.monotonic()
            try:
                async with http.get(
                    self.base + "/api/notifications/stream", headers=headers, timeout=timeout
                ) as r:
                    self.stats.record(
                        self.now(), "GET stream (open)", r.status, (time.monotonic() - began) * 1000
                    )
                    if r.status != 200:
                        raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
                    opened = True
                    self.stream_open += 1
                    self.streams_ever += 1
                    event_id = None
                    async for raw in r.content:
                        line = raw.rstrip(b"\r\n")
                        if line.startswith(b"id:"):
                            event_id = line[3:].strip().decode()
                        elif not line and event_id is not None:
                            nid = int(event_id)
                            if nid in self.stream_seen:
                                self.stream_dupes += 1
                            else:
                                self.stream_seen[nid] = time.time()
                            last_id, event_id = str(nid), None
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.stats.stream_drops[type(exc).__name__] += 1
            finally:
                if opened:
                    self.stream_open -= 1
            if self.stopping.is_set():
                return
            await asyncio.sleep(random.uniform(2.0, 4.0))  # the stream's `retry: 3000`

    # the platform, operators, background work ---------------------------------------------

    async def platform(self, http: aiohttp.ClientSession) -> None:
        """The platform backend's notifications: one fan at a time (vote summaries, new
        shows) about every `notify_every` s, a show reminder to its followers every 10 s."""
        service = {"Authorization": f"Bearer {self.token(load_world.OPERATOR_ID, 'service_role')}"}
        every = self.args.notify_every
        next_reminder = self.now() + 5
        while not self.stopping.is_set():
            fan = self.rng.choice(self.cast.fans[: self.ramped_in()] or self.cast.fans[:1])
            show = self.rng.choice(self.cast.shows)
            kind = self.rng.choice(NOTIFY_TYPES)
            await self.send(http, service, [fan.user_id], kind, show.id)
            if self.now() >= next_reminder:
                next_reminder = self.now() + 10
                fans = [f for f in self.followers.get(show.artist_id, []) if f in self.ramped_ids][
                    :20
                ] or [fan.user_id]
                await self.send(http, service, fans, "show_reminder", show.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.rng.expovariate(1 / every))

    async def send(
        self,
        http: aiohttp.ClientSession,
        service: dict[str, str],
        users: list[str],
        kind: str,
        show_id: int,
    ) -> None:
        body = {
            "userIds": users,
            "type": kind,
            "title": f"Load {kind}",
            "message": f"show {show_id}: make your prediction",
            "data": {"showId": show_id},
            "channels": ["email", "in_app"],
            "variables": {
                "artist_name": "The Band",
                "venue_name": "Hall",
                "show_date": "soon",
                "show_url": f"{SITE}/shows/{show_id}",
                "reminder_text": "tonight",
                "total_votes": 0,
                "accuracy_percentage": 0,
            },
        }
        key = uuid.uuid4().hex
        for _attempt in range(3):  # a backend retries with the same key (no duplicate)
            status, answer = await self.call(
                http,
                "POST /api/notifications/send",
                "POST",
                "/api/notifications/send",
                json=body,
                headers={**service, "Idempotency-Key": key},
            )
            if 200 <= status < 300 and isinstance(answer, dict):
                deliveries = answer.get("deliveries", {})
                self.stats.notify_accepted_api["email"] += int(deliveries.get("email", 0))
                self.stats.notify_accepted_api["in_app"] += int(deliveries.get("in_app", 0))
                self.stats.notify_requests_ok += 1
                return
            if 400 <= status < 500:
                return
            await asyncio.sleep(1.0)
        self.stats.notify_requests_failed += 1

    async def operator(self, http: aiohttp.ClientSession, no: int) -> None:
        auth = {"Authorization": f"Bearer {self.token(load_world.OPERATOR_ID, admin=True)}"}
        rng = random.Random(no)
        while not self.stopping.is_set():
            await self.call(
                http,
                "GET dashboard panel",
                "GET",
                "/api/analytics/dashboard/panels/realtime",
                headers=auth,
            )
            panel = rng.choice(PANELS[1:])
            await self.call(
                http,
                "GET dashboard panel",
                "GET",
                f"/api/analytics/dashboard/panels/{panel}?range=24h",
                headers=auth,
            )
            await self.call(http, "GET analytics/live", "GET", "/api/analytics/live", headers=auth)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 5.0)

    async def background(self, db: Any) -> None:
        """Every minute: the incremental ETL, the notification feeds (vote summaries, show
        reminders, new shows from the data) and the setlist predictions, on the server's own
        job queue (its cron runs them less often; a queueing lock keeps one of each)."""
        from procrastinate.exceptions import AlreadyEnqueued

        from mysetlist.core.job_queue import defer_in_transaction
        from mysetlist.ml.jobs import PREDICT_UPCOMING
        from mysetlist.ml.jobs import QUEUE as ML_QUEUE
        from mysetlist.notify.tasks import FEED_EVENTS
        from mysetlist.notify.tasks import QUEUE as NOTIFY_QUEUE
        from mysetlist.warehouse.jobs import INCREMENTAL_TASK
        from mysetlist.warehouse.runs import QUEUE as ETL_QUEUE

        tasks = (
            (INCREMENTAL_TASK, ETL_QUEUE),
            (FEED_EVENTS, NOTIFY_QUEUE),
            (PREDICT_UPCOMING, ML_QUEUE),
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), 10)
        while not self.stopping.is_set():
            for name, queue in tasks:
                try:
                    async with db.pool.connection() as conn, conn.transaction():
                        await defer_in_transaction(
                            conn, name, queue=queue, queueing_lock=name, timestamp=int(time.time())
                        )
                    self.stats.background_queued[name] += 1
                except AlreadyEnqueued:
                    self.stats.background_skipped[name] += 1
                except Exception as exc:  # a fault run
                    self.stats.transport_errors[f"queue {name}: {type(exc).__name__}"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 60)

    # the run ------------------------------------------------------------------------------

    def ramped_in(self) -> int:
        share = min(1.0, self.now() / max(self.args.ramp, 1e-9))
        return max(1, int(share * len(self.cast.fans)))

    @property
    def ramped_ids(self) -> set[str]:
        n = self.ramped_in()
        if getattr(self, "_ramped_n", -1) != n:
            self._ramped_n = n
            self._ramped = {f.user_id for f in self.cast.fans[:n]}
        return self._ramped

    async def count_connections(self) -> int | None:
        """pg_stat_activity for this database, on a connection of its own (not the fans'
        pool, which a stalled server can hold for minutes), given at most 5 s."""
        try:
            async with asyncio.timeout(5):
                if self._probe is None or self._probe.closed:
                    self._probe = await psycopg.AsyncConnection.connect(
                        self.database_url, autocommit=True
                    )
                cur = await self._probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                row = await cur.fetchone()
                return int(row[0]) if row else None
        except Exception:  # PostgreSQL down (a fault) or too slow to answer
            if self._probe is not None:
                await self._probe.close()
            self._probe = None
            return None

    async def sampler(
        self, servers: Callable[[], dict[str, int]], pg_pid: int | None, db: Any
    ) -> None:
        """Every 2 s: streams held, the generator's CPU and loop lag, each server process's
        CPU and memory, PostgreSQL's CPU (when ours) and its connections."""
        me = psutil.Process()
        me.cpu_percent()
        procs: dict[int, psutil.Process] = {}
        loop = asyncio.get_running_loop()
        while True:
            t = self.now()
            began = loop.time()
            await asyncio.sleep(2.0)
            lag = (loop.time() - began - 2.0) * 1000
            tree: dict[str, tuple[float, float]] = {}
            roots = servers()
            for role, pid in roots.items():
                try:
                    root = procs.setdefault(pid, psutil.Process(pid))
                    members = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for p in members:
                    p = procs.setdefault(p.pid, p)
                    try:
                        name = role if p.pid == pid else f"{role} child"
                        cpu, rss = p.cpu_percent(), p.memory_info().rss / 2**20
                    except psutil.Error:
                        continue
                    old = tree.get(name, (0.0, 0.0))
                    tree[name] = (old[0] + cpu, old[1] + rss)
            if pg_pid is not None:
                try:
                    root = procs.setdefault(pg_pid, psutil.Process(pg_pid))
                    cpu = rss = 0.0
                    for p in [root, *root.children()]:
                        p = procs.setdefault(p.pid, p)
                        with contextlib.suppress(psutil.Error):
                            cpu += p.cpu_percent()
                            rss += p.memory_info().rss / 2**20
                    tree["postgres"] = (cpu, rss)
                except psutil.Error:
                    pass
            conns = await self.count_connections()
            self.stats.samples.append(
                {
                    "t": round(t + 2.0, 1),
                    "sse_open": self.stream_open,
                    "gen_cpu": me.cpu_percent(),
                    "loop_lag_ms": round(lag, 1),
                    "procs": tree,
                    "db_conns": conns,
                    "load": os.getloadavg()[0],
                    "fans": self.ramped_in(),
                }
            )


PREFERENCES = {
    "quietHours": None,
    "muted": False,
    "channels": {
        c: {"email": True, "in_app": True} for c in ("show_reminders", "new_shows", "vote_results")
    },
    "digest": {c: "immediate" for c in ("show_reminders", "new_shows", "vote_results")},
}
VOTE_SQL = ""
FOLLOW_SQL = ""


async def run_fans(
    h: Harness,
    servers: Callable[[], dict[str, int]],
    pg_pid: int | None,
    chaos: Callable[[], Coroutine[Any, Any, None]] | None,
) -> None:
    from mysetlist.core.db import Database

    global VOTE_SQL, FOLLOW_SQL
    from mysetlist.core.db import read_sql

    VOTE_SQL = read_sql("mysetlist.demo", "live_vote.sql")
    FOLLOW_SQL = read_sql("mysetlist.demo", "live_follow.sql")
    db = Database(h.database_url, min_size=1, max_size=4)
    await db.open()
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            n = len(h.cast.fans)
            h.stats.t0 = time.time()
            background = [
                asyncio.create_task(h.sampler(servers, pg_pid, db)),
                asyncio.create_task(h.platform(http)),
                asyncio.create_task(h.background(db)),
            ]
            background += [
                asyncio.create_task(h.operator(http, i)) for i in range(h.args.operators)
            ]
            if chaos is not None:
                background.append(asyncio.create_task(chaos()))
            fans = [
                asyncio.create_task(h.fan(http, db, fan, h.args.ramp * i / n))
                for i, fan in enumerate(h.cast.fans)
            ]
            h.stats.full_load_from = h.args.ramp
            await asyncio.sleep(h.args.ramp + h.args.minutes * 60)
            h.stats.full_load_to = h.now()
            h.stopping.set()
            await asyncio.gather(*fans, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
    finally:
        await db.close()


# -- reconciliation ------------------------------------------------------------------------


def reconcile(h: Harness, sink: Sink, drain_s: float) -> dict[str, Any]:
    """After the fans stop: wait (up to `drain_s`) until the queued email deliveries of the
    run are sent, then count acked vs stored events, accepted vs delivered emails."""
    since = h.stats.t0 - 1
    deadline = time.monotonic() + drain_s
    with psycopg.connect(h.database_url, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE d.status = 'queued'"
                "                        OR (d.status = 'deferred' AND d.defer_reason = 'retry'))"
                " FROM notify.notification_delivery d"
                " JOIN notify.notifications n ON n.id = d.notification_id"
                " WHERE n.created_at >= to_timestamp(%s) AND d.channel = 'email'",
                (since,),
            ).fetchone()
            pending = int(row[0]) if row else 0
            if pending == 0 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        time.sleep(2.0)  # the last SMTP transactions reach the sink
        stored = {
            r[0]
            for r in conn.execute(
                "SELECT properties->>'mid' FROM analytics.user_events"
                " WHERE properties->>'load_run' = %s",
                (h.tag,),
            )
        }
        deliveries = conn.execute(
            "SELECT d.id, d.status, coalesce(d.defer_reason, ''), extract(epoch FROM n.created_at),"
            "       n.type"
            " FROM notify.notification_delivery d"
            " JOIN notify.notifications n ON n.id = d.notification_id"
            " WHERE n.created_at >= to_timestamp(%s) AND d.channel = 'email'",
            (since,),
        ).fetchall()
        created: dict[int, float] = dict(
            conn.execute(
                "SELECT id, extract(epoch FROM created_at) FROM notify.notifications"
                " WHERE id = ANY(%s)",
                (list(h.stream_seen),),
            ).fetchall()
        )
        # What the streams should show: notifications with an in-app delivery, made while
        # the fans were connected (the inbox lists those).
        fan_notifications = conn.execute(
            "SELECT count(DISTINCT n.id) FROM notify.notifications n"
            " JOIN notify.notification_delivery d ON d.notification_id = n.id"
            " WHERE n.created_at >= to_timestamp(%s) AND n.created_at <= to_timestamp(%s)"
            "   AND d.channel = 'in_app'",
            (h.stats.t0 + h.args.ramp + 5, h.stats.t0 + h.stats.full_load_to),
        ).fetchone()
        seen_in_window = conn.execute(
            "SELECT count(*) FROM notify.notifications WHERE id = ANY(%s)"
            " AND created_at >= to_timestamp(%s) AND created_at <= to_timestamp(%s)",
            (list(h.stream_seen), h.stats.t0 + h.args.ramp + 5, h.stats.t0 + h.stats.full_load_to),
        ).fetchone()
    acked = set(h.acked)
    lost_events = acked - stored
    with sink.lock:
        arrivals = list(sink.arrivals)
    seen: dict[int, float] = {}
    copies: Counter[int] = Counter()
    for delivery, at in arrivals:
        copies[delivery] += 1
        seen.setdefault(delivery, at)
    statuses = Counter(
        f"{status}{'/' + reason if reason else ''}" for _, status, reason, _, _ in deliveries
    )
    # Accepted: every email delivery of the run the system owes (held by quiet hours or a
    # digest would be owed later; none are, with the fans' preferences).
    # A frequency cap holds a delivery until its window ends (owed later, not lost).
    held = {
        d
        for d, status, reason, _, _ in deliveries
        if status == "deferred" and reason in ("quiet_hours", "digest", "frequency_cap")
    }
    owed = {d for d, _, _, _, _ in deliveries} - held
    created_at = {d: float(c) for d, _, _, c, _ in deliveries}
    sink_lags = [seen[d] - created_at[d] for d in seen if d in created_at]
    stream_lags = [h.stream_seen[n] - float(c) for n, c in created.items()]
    lost_deliveries = sorted(owed - set(seen))
    status_of = {d: status for d, status, _, _, _ in deliveries}
    stuck = sum(1 for d in lost_deliveries if status_of.get(d) in ("queued", "deferred"))
    return {
        "acked": len(acked),
        "stored_of_acked": len(acked & stored),
        "stored": len(stored),
        "lost_events": len(lost_events),
        "lost_event_ack_times": sorted(h.acked[m] for m in lost_events)[:50],
        "refused_events": h.stats.events_refused,
        "accepted": len(owed),
        "delivered": len(owed & set(seen)),
        "duplicates": sum(c - 1 for c in copies.values() if c > 1),
        "duplicate_ids": sorted(d for d, c in copies.items() if c > 1)[:20],
        "lost_deliveries": lost_deliveries[:20],
        "lost_delivery_count": len(lost_deliveries),
        "stuck_queued": stuck,
        "sent_not_at_sink": len(lost_deliveries) - stuck,
        "lost_delivery_created": sorted(created_at[d] - h.stats.t0 for d in lost_deliveries)[:50],
        "delivery_statuses": dict(statuses),
        "sink_unknown": sink.unknown,
        "sink_lags": sink_lags,
        "stream_lags": stream_lags,
        "stream_seen": len(h.stream_seen),
        "stream_duplicates": h.stream_dupes,
        "notifications_created": int(fan_notifications[0]) if fan_notifications else 0,
        "stream_seen_in_window": int(seen_in_window[0]) if seen_in_window else 0,
        "held_by_preferences": len(held),
        "accepted_api": dict(h.stats.notify_accepted_api),
    }


# -- profile -------------------------------------------------------------------------------


async def profile(pid: int, seconds: int, out: Path, fmt: str = "flamegraph") -> str | None:
    """py-spy record of the API process for `seconds` into `out` (`flamegraph`: an SVG;
    `raw`: folded stacks the report lists the hottest functions from), or why not."""
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "50",
           "--subprocesses", "--nonblocking", "--format", fmt, "--output", str(out)]  # fmt: skip
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
    except FileNotFoundError:
        return "py-spy is not installed (pip install py-spy)"
    if proc.returncode != 0:
        return f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"
    return None


# -- main ----------------------------------------------------------------------------------


@contextlib.contextmanager
def raised_file_limit() -> Any:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 200_000) if hard != resource.RLIM_INFINITY else 200_000
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from mysetlist.core.config import load_settings

    workdir = Path(tempfile.mkdtemp(prefix="load-"))
    topology = bool(os.environ.get("API_URL"))
    sink = Sink()
    smtp_port = (
        int(os.environ.get("LOAD_SMTP_PORT", "2525")) if topology else load_world.free_port()
    )
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    private: load_chaos.PrivateServers | None = None
    topo: load_chaos.Topology | None = None
    prometheus: load_alerts.PrivatePrometheus | None = None
    poller: load_alerts.AlertPoller | None = None
    stack = contextlib.ExitStack()
    server_set: ServerSet | None = None
    try:
        if topology:
            base = os.environ["API_URL"].rstrip("/")
            database_url = os.environ["DATABASE_URL"]
            secrets = {k: os.environ[k] for k in ("JWT_SECRET", "MYSETLIST_ENCRYPTION_KEY")}
            source, pg_pid = "topology (API_URL)", None
            if args.chaos:
                topo = load_chaos.Topology(
                    Path(os.environ.get("MYSETLIST_CLUSTER_DIR", "/tmp/mysetlist-cluster"))
                )
        else:
            secrets = load_world.secrets_env(workdir)
            if args.chaos:
                private = load_chaos.PrivateServers(workdir)
                admin, redis_url = private.start()
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE mysetlist")
                endpoints = load_world.Endpoints(
                    admin.rsplit("/", 1)[0] + "/mysetlist",
                    redis_url,
                    "private",
                    postgres_pid=private.postmaster_pid(),
                )
            else:
                endpoints = stack.enter_context(load_world.servers(workdir))
            database_url, source, pg_pid = (
                endpoints.database_url,
                endpoints.source,
                endpoints.postgres_pid,
            )
        os.environ.update(secrets)
        seeded = load_world.seed(database_url, args.users, secrets["MYSETLIST_ENCRYPTION_KEY"])
        cast = load_world.read_cast(database_url, args.users)
        settings = load_settings(**{k: v for k, v in secrets.items() if k == "JWT_SECRET"})
        prometheus_url = os.environ.get("PROMETHEUS_URL") if topology else None
        alerts_off: str | None = None
        if not topology:
            port = load_world.free_port()
            base = f"http://127.0.0.1:{port}"
            env = {
                **os.environ,
                **secrets,
                "DATABASE_URL": endpoints.database_url,
                "REDIS_URL": endpoints.redis_url,
                "MYSETLIST_REDIS_KEY_PREFIX": endpoints.redis_prefix,
                "EMAIL_PROVIDERS": "smtp",
                "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
                "NOTIFY_RATE_LIMIT_PER_MINUTE": "0",
                # Every fan shares 127.0.0.1: per-address limits would throttle the crowd.
                "MYSETLIST_RATE_LIMIT_ENABLED": "false",
                "LOG_LEVEL": "WARNING",
                "OPENBLAS_NUM_THREADS": "1",
            }
            worker_metrics = load_world.free_port() if args.chaos and args.split else None
            server_set = ServerSet(env, port, args.split, workdir, worker_metrics)
            server_set.start_api()
            server_set.start_worker()
            await wait_ready(base)
            if args.chaos:
                # The same rules and intervals as the topology's Prometheus.
                jobs = {"api": [f"127.0.0.1:{port}"]}
                if worker_metrics is not None:
                    jobs["worker"] = [f"127.0.0.1:{worker_metrics}"]
                prometheus = load_alerts.PrivatePrometheus(workdir, load_world.free_port())
                alerts_off = await asyncio.get_running_loop().run_in_executor(
                    None, prometheus.start, jobs
                )
                prometheus_url = None if alerts_off else prometheus.url
        elif args.chaos and not prometheus_url:
            alerts_off = "PROMETHEUS_URL is not set (deploy/local-cluster/up.sh prints it)"
        h = Harness(args, base, database_url, cast, seeded.write_key, settings)
        h.stats.meta = {
            "users": len(cast.fans),
            "minutes": args.minutes,
            "ramp_s": args.ramp,
            "think_s": args.think,
            "batch_every_s": args.batch_every,
            "servers": source,
            "api": (
                f"{base} (haproxy → {', '.join(topo.names('api-'))}; workers "
                f"{', '.join(topo.names('worker-'))})"
                if topo is not None
                else base
                if topology
                else (
                    "mysetlist api + mysetlist worker"
                    if args.split
                    else "mysetlist serve (one process)"
                )
            ),
            "world": seeded.world,
            "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "cores": os.cpu_count(),
            "load_before": os.getloadavg(),
        }
        if args.chaos:
            if prometheus_url:
                poller = load_alerts.AlertPoller(prometheus_url)
                poller.start()
            h.stats.alerts_source = {
                "prometheus": prometheus_url,
                "private": prometheus is not None,
                "off": alerts_off,
                "rule_for": poller.rule_for if poller else {},
                "intervals": poller.intervals if poller else {},
                "poll_s": load_alerts.POLL_S,
            }

        def pids() -> dict[str, int]:
            if topo is not None:
                return {
                    n: p
                    for n, p in topo.pids().items()
                    if not n.startswith(("prometheus", "pg-replica"))
                }
            return server_set.pids() if server_set is not None else {}

        chaos = None
        if args.chaos:
            rule_for = poller.rule_for if poller is not None else {}
            if topo is not None:
                chaos = make_topology_chaos(h, topo, rule_for, watched=poller is not None)
            else:
                assert server_set is not None
                assert private is not None
                chaos = make_chaos(
                    h, server_set, private, base, rule_for, watched=poller is not None
                )
        prof_task = None
        if args.profile and server_set is not None:

            async def prof() -> None:
                # Mid-run: a flame graph and the raw stacks, recorded side by side.
                await asyncio.sleep(args.ramp + min(20.0, args.minutes * 20))
                api = pids().get("api")
                if api is not None:
                    svg = Path(args.img_dir) / f"load-{args.report_name}-profile.svg"
                    raw = workdir / "profile.txt"
                    h.stats.profile_error, _ = await asyncio.gather(
                        profile(api, 20, svg), profile(api, 20, raw, "raw")
                    )
                    if h.stats.profile_error is None:
                        h.stats.profile_svg = svg.name
                        h.stats.profile_top = load_report.top_functions(raw)

            prof_task = asyncio.create_task(prof())
        await run_fans(h, pids, pg_pid, chaos)
        if prof_task is not None:
            prof_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prof_task
        h.stats.meta["load_after"] = os.getloadavg()
        h.stats.reconciliation = reconcile(h, sink, args.drain)
        h.stats.streams_ever = h.streams_ever
        if poller is not None:
            if h.stats.faults:
                # A fault near the end clears after the fans stop: wait for its alerts.
                first = h.stats.t0 + h.stats.faults[0].at_s
                poller.wait_resolved(first, within=90)
            h.stats.alert_timeline = poller.stop()
        return load_report.summarise(h.stats)
    finally:
        if poller is not None:
            poller.stop()
        if server_set is not None:
            server_set.stop()
            errors = count_tracebacks(workdir)
            if errors and not args.json:
                where = workdir if args.keep else "removed; --keep keeps them"
                print(f"server logs ({where}): {errors} tracebacks", file=sys.stderr)
        if prometheus is not None:
            prometheus.stop()
        stack.close()
        if private is not None:
            private.stop()
        controller.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def count_tracebacks(workdir: Path) -> int:
    return sum(p.read_text(errors="replace").count("Traceback") for p in workdir.glob("*.log"))


def _hold(rule_for: dict[str, float], alert: str, default_for: float, detect: float = 0.0) -> float:
    return load_alerts.hold_seconds(rule_for.get(alert, default_for), detect_s=detect)


def _expect(alert: str, needs: float, fires: bool = True, why: str = "", **labels: str) -> Any:
    return load_alerts.Expect(alert, tuple(labels.items()), fires=fires, needs_s=needs, why=why)


def dependency_hold(rule_for: dict[str, float], alert: str, watched: bool) -> float:
    """A dependency's outage (Redis, PostgreSQL stopped): the issue's 30 s, longer when that
    is too short for its alert (`alert`) to fire under Prometheus's eyes."""
    if not watched:
        return load_chaos.DEPENDENCY_DOWN_S
    need = _hold(rule_for, alert, 15.0, load_alerts.DEPENDENCY_DETECT_S)
    return max(load_chaos.DEPENDENCY_DOWN_S, need)


def held_note(down: float, alert: str) -> str:
    return (
        f"; held past the issue's {load_chaos.DEPENDENCY_DOWN_S:.0f} s so that {alert} can fire"
        if down > load_chaos.DEPENDENCY_DOWN_S
        else ""
    )


async def supervised(
    inject: Callable[[], Coroutine[Any, Any, None]],
    supervise: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """The faults, with a supervisor restarting what dies on its own, until the run ends."""
    supervisor = asyncio.create_task(supervise())
    try:
        await inject()
        await asyncio.Event().wait()  # until the run ends (the harness cancels the chaos)
    finally:
        supervisor.cancel()


async def postgres_outage(
    servers: load_chaos.PrivateServers | load_chaos.Topology, down: float
) -> str:
    """PostgreSQL stopped (`pg_ctl stop -m fast`) for `down` seconds, then started: the
    fault's note."""
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, servers.stop_postgres)
    await asyncio.sleep(down)
    await loop.run_in_executor(None, servers.start_postgres)
    note = f"pg_ctl stop -m fast, down {down:.0f} s, started again"
    return note + held_note(down, "DatabaseDown")


def make_chaos(
    h: Harness,
    servers: ServerSet,
    private: load_chaos.PrivateServers,
    base: str,
    rule_for: dict[str, float],
    watched: bool,
) -> Callable[[], Coroutine[Any, Any, None]]:
    killing: set[int] = set()
    redis_down = dependency_hold(rule_for, "RedisDown", watched)
    pg_down = dependency_hold(rule_for, "DatabaseDown", watched)
    pg_need = _hold(rule_for, "DatabaseDown", 15.0, load_alerts.DEPENDENCY_DETECT_S)
    target_down = _hold(rule_for, "TargetDown", 30.0)
    worker_down = 60.0 + _hold(rule_for, "WorkerDown", 120.0)  # heartbeats go stale at 60 s

    async def supervise() -> None:
        """Restart a server process that exited without being killed here (as systemd's
        Restart=always would), and say so in the report."""
        while True:
            await asyncio.sleep(1.0)
            for role in ("api", "worker"):
                proc = servers.api if role == "api" else servers.worker
                if proc is None or proc.poll() is None or proc.pid in killing:
                    continue
                h.stats.supervisor.append(
                    f"{role} pid {proc.pid} exited with {proc.returncode} at {h.now():.0f} s"
                )
                await asyncio.sleep(load_chaos.RESTART_DELAY_S)
                if role == "api":
                    servers.start_api()
                else:
                    servers.start_worker()

    async def chaos() -> None:
        await supervised(inject, supervise)

    async def inject() -> None:
        settle = 15.0  # an alert clears a scrape and an evaluation after the fault
        lasting = {
            "kill_api": 8.0 + settle,
            "kill_worker": 2.0 + settle,
            "restart_postgres": 3.0 + settle,
            "stop_postgres": pg_down + 5.0 + settle,
            "stop_redis": redis_down + settle,
        }
        times = load_chaos.fault_times(h.args.ramp, h.args.minutes * 60, lasting)
        for name in load_chaos.FAULTS:
            await asyncio.sleep(max(0.0, times[name] - h.now()))
            record = load_chaos.FaultRecord(name, round(h.now(), 1))
            h.stats.faults.append(record)
            loop = asyncio.get_running_loop()
            if name == "kill_api":
                assert servers.api is not None
                record.target = f"pid {servers.api.pid} ({'api' if servers.split else 'serve'})"
                record.expect = [
                    _expect("TargetDown", target_down, job="api", instance=base[7:]),
                ]
                killing.add(servers.api.pid)
                load_chaos.kill9(servers.api.pid)
                await loop.run_in_executor(None, servers.api.wait)
                await asyncio.sleep(load_chaos.RESTART_DELAY_S)
                servers.start_api()
                ready = await wait_ready(base)
                record.notes.append(
                    f"restarted by the harness after "
                    f"{load_chaos.RESTART_DELAY_S:.0f} s; ready {ready:.1f} s later"
                )
            elif name == "kill_worker":
                if servers.worker is not None:
                    record.target = f"pid {servers.worker.pid} (mysetlist worker)"
                    if servers.worker_metrics_port is not None:
                        record.expect.append(
                            _expect(
                                "TargetDown",
                                target_down,
                                job="worker",
                                instance=f"127.0.0.1:{servers.worker_metrics_port}",
                            )
                        )
                    record.expect.append(_expect("WorkerDown", worker_down, why="the only worker"))
                    killing.add(servers.worker.pid)
                    load_chaos.kill9(servers.worker.pid)
                    await loop.run_in_executor(None, servers.worker.wait)
                    await asyncio.sleep(load_chaos.RESTART_DELAY_S)
                    servers.start_worker()
                    record.notes.append(
                        f"restarted by the harness after {load_chaos.RESTART_DELAY_S:.0f} s"
                    )
                else:
                    assert servers.api is not None
                    child = load_chaos.worker_child(servers.api.pid)
                    if child is None:
                        record.skipped = (
                            "`mysetlist serve` on this code runs the worker inside"
                            " the API process: no worker process to kill (the"
                            " API kill above took the worker down with it)"
                        )
                    else:
                        record.target = f"pid {child.pid} (serve's worker child)"
                        record.expect.append(
                            _expect("WorkerDown", worker_down, why="the only worker")
                        )
                        load_chaos.kill9(child.pid)
                        record.notes.append("left to `mysetlist serve` to restart")
            elif name == "restart_postgres":
                record.target = f"private PostgreSQL, port {private.pg_port}"
                record.expect = [
                    _expect(
                        "DatabaseDown",
                        _hold(rule_for, "DatabaseDown", 15.0, load_alerts.DEPENDENCY_DETECT_S),
                    )
                ]
                await loop.run_in_executor(None, private.restart_postgres)
                record.notes.append("pg_ctl restart -m fast")
            elif name == "stop_postgres":
                record.target = f"private PostgreSQL, port {private.pg_port}"
                record.expect = [_expect("DatabaseDown", pg_need)]
                record.notes.append(await postgres_outage(private, pg_down))
            elif name == "stop_redis":
                record.target = f"private Redis, port {private.redis_port}"
                record.expect = [
                    _expect(
                        "RedisDown",
                        _hold(rule_for, "RedisDown", 15.0, load_alerts.DEPENDENCY_DETECT_S),
                    )
                ]
                await loop.run_in_executor(None, private.stop_redis)
                await asyncio.sleep(redis_down)
                await loop.run_in_executor(None, private.start_redis)
                record.notes.append(
                    f"down {redis_down:.0f} s (killed, restarted empty)"
                    + held_note(redis_down, "RedisDown")
                )
            record.done_s = round(h.now(), 1)

    return chaos


def make_topology_chaos(
    h: Harness, topo: load_chaos.Topology, rule_for: dict[str, float], watched: bool
) -> Callable[[], Coroutine[Any, Any, None]]:
    """The faults on deploy/local-cluster's processes. A killed API or worker stays down
    past TargetDown's `for:` (while Prometheus watches), so its alert can fire; the other
    API (haproxy routes around the dead one) and the other worker serve meanwhile."""
    held: set[str] = set()  # processes a fault keeps down (not for the supervisor)
    target_down = _hold(rule_for, "TargetDown", 30.0)
    process_down = target_down if watched else load_chaos.RESTART_DELAY_S
    redis_down = dependency_hold(rule_for, "RedisDown", watched)
    pg_down = dependency_hold(rule_for, "DatabaseDown", watched)
    pg_need = _hold(rule_for, "DatabaseDown", 15.0, load_alerts.DEPENDENCY_DETECT_S)

    async def supervise() -> None:
        """A topology process that died on its own is reported and started again, as
        systemd's Restart=always would."""
        while True:
            await asyncio.sleep(1.0)
            for name in topo.names("api-") + topo.names("worker-"):
                pid = topo.pid(name)
                if name in held or pid is None or load_chaos._alive(pid):
                    continue
                h.stats.supervisor.append(f"{name} pid {pid} exited at {h.now():.0f} s")
                await asyncio.sleep(load_chaos.RESTART_DELAY_S)
                topo.restart(name)

    async def chaos() -> None:
        await supervised(inject, supervise)

    async def api_ready(port: str, within: float = 90) -> float:
        return await wait_ready(f"http://127.0.0.1:{port}", within)

    async def inject() -> None:
        settle = 15.0
        lasting = {
            "kill_api": process_down + 8.0 + settle,
            "kill_worker": process_down + settle,
            "restart_postgres": 3.0 + settle,
            "stop_postgres": pg_down + 5.0 + settle,
            "stop_redis": redis_down + 5.0 + settle,
        }
        times = load_chaos.fault_times(h.args.ramp, h.args.minutes * 60, lasting)
        loop = asyncio.get_running_loop()
        for name in load_chaos.FAULTS:
            await asyncio.sleep(max(0.0, times[name] - h.now()))
            record = load_chaos.FaultRecord(name, round(h.now(), 1))
            h.stats.faults.append(record)
            if name in ("kill_api", "kill_worker"):
                role = "api" if name == "kill_api" else "worker"
                names = topo.names(f"{role}-")
                victim = names[0]
                flag = "--port" if role == "api" else "--metrics-port"
                port = topo.option(victim, flag)
                held.add(victim)
                try:
                    pid = topo.kill(victim)
                    record.target = f"{victim} (pid {pid}, process group) of {len(names)} {role}s"
                    if port is not None:
                        record.expect.append(
                            _expect(
                                "TargetDown",
                                target_down,
                                job=role,
                                instance=f"127.0.0.1:{port}",
                            )
                        )
                    if role == "worker":
                        record.expect.append(
                            _expect(
                                "WorkerDown",
                                60.0 + _hold(rule_for, "WorkerDown", 120.0),
                                fires=len(names) < 2,
                                why="another worker is alive" if len(names) > 1 else "",
                            )
                        )
                    await asyncio.sleep(process_down)
                    new = topo.restart(victim)
                    note = (
                        f"down {process_down:.0f} s"
                        + (" (held past TargetDown's `for:`: it can fire)" if watched else "")
                        + f", then started again with its recorded command line (pid {new})"
                    )
                    if role == "api" and port is not None:
                        ready = await api_ready(port)
                        note += f"; ready {ready:.1f} s later"
                    record.notes.append(note)
                finally:
                    held.discard(victim)
            elif name == "restart_postgres":
                old = topo.postmaster_pid()
                record.target = f"PostgreSQL primary (postmaster pid {old})"
                record.expect = [
                    _expect(
                        "DatabaseDown",
                        _hold(rule_for, "DatabaseDown", 15.0, load_alerts.DEPENDENCY_DETECT_S),
                    )
                ]
                began = time.monotonic()
                await loop.run_in_executor(None, topo.restart_postgres)
                record.notes.append(
                    f"pg_ctl restart -m fast: {time.monotonic() - began:.1f} s"
                    " (the replica and pgbouncer reconnect on their own)"
                )
            elif name == "stop_postgres":
                record.target = f"PostgreSQL primary (postmaster pid {topo.postmaster_pid()})"
                record.expect = [_expect("DatabaseDown", pg_need)]
                note = await postgres_outage(topo, pg_down)
                record.notes.append(note + " (the replica and pgbouncer reconnect on their own)")
            elif name == "stop_redis":
                ports = topo.redis_ports()
                listed = ", ".join(map(str, ports))
                record.target = f"all {len(ports)} Redis Cluster masters ({listed})"
                record.expect = [
                    _expect(
                        "RedisDown",
                        _hold(rule_for, "RedisDown", 15.0, load_alerts.DEPENDENCY_DETECT_S),
                    )
                ]
                for redis_port in ports:
                    await loop.run_in_executor(None, topo.kill, f"redis-{redis_port}")
                await asyncio.sleep(redis_down)
                for redis_port in ports:
                    topo.restart(f"redis-{redis_port}")
                ok = await loop.run_in_executor(None, topo.wait_redis_cluster)
                record.notes.append(
                    f"killed (-9) together, down {redis_down:.0f} s"
                    + f", restarted empty from their nodes.conf; cluster_state ok {ok:.1f} s later"
                    + held_note(redis_down, "RedisDown")
                )
            record.done_s = round(h.now(), 1)

    return chaos


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=1.0, help="full load after the ramp")
    p.add_argument("--json", action="store_true", help="last line: the summary JSON")
    p.add_argument("--chaos", action="store_true")
    p.add_argument(
        "--split", action="store_true", help="mysetlist api + mysetlist worker instead of serve"
    )
    p.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds to bring all fans in (default users/50, 10..120)",
    )
    p.add_argument("--think", type=float, default=8.0, help="mean seconds between actions")
    p.add_argument("--batch-every", type=float, default=6.0, help="seconds between SDK batches")
    p.add_argument(
        "--notify-every",
        type=float,
        default=None,
        help="mean seconds between platform notifications (default 1000/users)",
    )
    p.add_argument("--operators", type=int, default=3)
    p.add_argument("--drain", type=float, default=90, help="most seconds to wait for deliveries")
    p.add_argument(
        "--report",
        choices=("auto", "none"),
        default="auto",
        help="auto: write docs/performance.md and plots; none: print only",
    )
    p.add_argument(
        "--report-name",
        default=None,
        help="marker name (default single|topology|chaos|chaos-topology)",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the API mid-run")
    p.add_argument("--keep", action="store_true", help="keep the run's folder (server logs)")
    p.add_argument("--docs", default=str(BENCH_DIR.parent / "docs" / "performance.md"))
    p.add_argument("--img-dir", default=str(BENCH_DIR.parent / "docs" / "img"))
    args = p.parse_args(argv)
    if args.ramp is None:
        args.ramp = min(120.0, max(10.0, args.users / 50))
    if args.notify_every is None:
        args.notify_every = max(0.05, 1000 / max(args.users, 1))
    if args.report_name is None:
        topology = bool(os.environ.get("API_URL"))
        if args.chaos:
            args.report_name = "chaos-topology" if topology else "chaos"
        else:
            args.report_name = "topology" if topology else "single"
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with raised_file_limit():
        summary = asyncio.run(main_async(args))
    if args.report != "none":
        load_report.write_report(summary, Path(args.docs), Path(args.img_dir), args.report_name)
    if not args.json:
        print(load_report.render(summary, args.report_name, img_prefix=None))
    print(orjson.dumps(summary["json"]).decode() if args.json else "", flush=True)


if __name__ == "__main__":
    main()
