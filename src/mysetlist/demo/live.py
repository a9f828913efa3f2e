"""Simulated fans for a running demo, so the live parts of the system move while a person
watches: the dashboard's real-time panels, the notification panels, a fan's inbox stream.

The world `build_world` makes is history, bulk-loaded; nothing in it happens now. A
`FanSimulator` adds a light, bounded stream of present-day activity through the same
paths real clients use:
- fans' events (page, artist and show views, searches, shares) go to
  `POST /api/analytics/events` with the fan's own token and a server-signed session id
  (`POST /api/analytics/anonymous-id`), so ingest, the live metrics and the rollups see
  them like any other;
- a fan predicts a song of a show's setlist or follows an artist: the row is written as
  the platform app would (in a transaction under the fan's role, row-level security
  applying), and the matching `vote` / `follow` event goes through ingest;
- now and then a show "starts": its followers browse it and get a show reminder, and
  single fans get a new-show or vote-summary notice, through `POST
  /api/notifications/send` with a service token, so deliveries run through the queue,
  the in-app inbox and the email provider (the demo's local outbox).

Bounded: about `Pace.events_per_second` events, one vote and one follow every few
seconds, a notification every `notify_every` seconds to at most `reminder_recipients`
fans. It runs until cancelled or told the API is stopping; a failed call is counted and
logged, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from mysetlist.core.auth import mint_token
from mysetlist.core.config import Settings
from mysetlist.core.db import Database, read_sql

log = logging.getLogger(__name__)
_SQL = "mysetlist.demo"
SITE = "https://mysetlist.app"
BROWSE = (("page_view", 0.3), ("artist_view", 0.3), ("show_view", 0.25), ("search", 0.1),
          ("share", 0.05))  # fmt: skip
PAGES = ("/", "/shows", "/artists", "/predictions", "/leaderboard")


@dataclass(frozen=True)
class Pace:
    """How much happens: events per second, and every how many seconds the rarer things."""

    events_per_second: float = 3.0
    vote_every: float = 6.0
    follow_every: float = 15.0
    notify_every: float = 20.0
    show_start_every: float = 90.0
    reminder_recipients: int = 5
    fans: int = 300  # the cast: this many fans of the world take part
    shows: int = 40  # the shows nearest to now that they look at


@dataclass
class LiveStats:
    """What the simulation did so far (the demo prints it; tests read it)."""

    events: int = 0
    votes: int = 0
    follows: int = 0
    notifications: int = 0
    shows_started: int = 0
    failures: int = 0
    last_failure: str | None = None


@dataclass
class _Fan:
    user_id: str
    artists: list[int]
    session_id: str | None = None


@dataclass
class _Show:
    id: int
    artist_id: int
    starts_at: datetime
    artist: str
    venue: str
    city: str
    songs: list[int] = field(default_factory=list)


class FanSimulator:
    def __init__(
        self,
        base_url: str,
        database_url: str,
        settings: Settings,
        *,
        operator_id: str,
        pace: Pace | None = None,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url
        self.database_url = database_url
        self.settings = settings
        self.operator_id = operator_id
        self.pace = pace or Pace()
        self.rng = random.Random(seed)
        self.stats = LiveStats()
        self._fans: list[_Fan] = []
        self._shows: list[_Show] = []
        self._artists: list[int] = []
        self._stopping: Callable[[], bool] = lambda: False

    # -- the loop --------------------------------------------------------------------------

    async def run(self, *, stopping: Callable[[], bool] = lambda: False) -> None:
        """Simulate until cancelled or until `stopping()` says the API is shutting down
        (its connections then fail, which is no news)."""
        self._stopping = stopping
        db = Database(self.database_url, min_size=1, max_size=2)
        await db.open()
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=15) as http:
                await self._load_cast(db)
                if not self._fans or not self._shows:
                    log.warning("live demo: no fans or scheduled shows in the world; idle")
                    return
                await self._loop(db, http)
        finally:
            await db.close()

    async def _loop(self, db: Database, http: httpx.AsyncClient) -> None:
        pace, loop = self.pace, asyncio.get_running_loop()
        started = loop.time()
        # The first show starts soon after the banner, so the panels move at once.
        due = {"vote": started + 1, "follow": started + 2, "notify": started + 3,
               "show": started + min(5.0, pace.show_start_every)}  # fmt: skip
        every = {"vote": pace.vote_every, "follow": pace.follow_every,
                 "notify": pace.notify_every, "show": pace.show_start_every}  # fmt: skip
        actions = {"vote": self._vote, "follow": self._follow, "notify": self._notify,
                   "show": self._show_starts}  # fmt: skip
        tick = 1.0
        while not self._stopping():
            now = loop.time()
            browse = self._browse(db, http, self._poisson(pace.events_per_second * tick))
            await self._attempt("browse", browse)
            for name, at in due.items():
                if now >= at:
                    due[name] = now + every[name] * self.rng.uniform(0.6, 1.4)
                    await self._attempt(name, actions[name](db, http))
            await asyncio.sleep(max(0.05, tick - (loop.time() - now)))

    async def _attempt(self, what: str, action: Any) -> None:
        try:
            await action
        except Exception as exc:  # one failed call (HTTP, database) never stops the demo
            self._failed(what, exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        if self._stopping():
            return
        self.stats.failures += 1
        self.stats.last_failure = f"{what}: {type(exc).__name__}: {exc}"[:300]
        # The first failure, then every 100th: a stopped server must not flood the terminal.
        if self.stats.failures == 1 or self.stats.failures % 100 == 0:
            log.warning("live demo: %s (%d failures so far)", self.stats.last_failure,
                        self.stats.failures)  # fmt: skip

    def _poisson(self, mean: float) -> int:
        # Knuth's method; `mean` is a few events at most.
        limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    # -- the cast --------------------------------------------------------------------------

    async def _load_cast(self, db: Database) -> None:
        fans = await db.fetch_all(
            read_sql(_SQL, "live_fans.sql"),
            {"operator": self.operator_id, "limit": max(1, self.pace.fans)},
        )
        shows = await db.fetch_all(read_sql(_SQL, "live_shows.sql"), {"limit": self.pace.shows})
        self._fans = [_Fan(r["user_id"], list(r["artists"])) for r in fans]
        self._shows = [
            _Show(
                r["id"],
                r["artist_id"],
                r["starts_at"],
                r["artist"],
                r["venue"],
                r["city"],
                list(r["songs"]),
            )
            for r in shows
        ]
        self._artists = sorted({s.artist_id for s in self._shows} | {
            a for f in self._fans for a in f.artists})  # fmt: skip

    def _fan(self) -> _Fan:
        return self.rng.choice(self._fans)

    def _show_for(self, fan: _Fan) -> _Show:
        """A show of an artist the fan follows when there is one, else any."""
        followed = [s for s in self._shows if s.artist_id in fan.artists]
        return self.rng.choice(followed or self._shows)

    # -- HTTP as the clients do it ---------------------------------------------------------

    def _bearer(self, user_id: str, role: str = "authenticated") -> dict[str, str]:
        token = mint_token(self.settings, user_id, role=role, ttl_seconds=600)
        return {"Authorization": f"Bearer {token}"}

    async def _session(self, http: httpx.AsyncClient, fan: _Fan) -> str:
        if fan.session_id is None:
            r = await http.post("/api/analytics/anonymous-id", json={})
            _check(r)
            fan.session_id = str(r.json()["session_id"])
        return fan.session_id

    async def _track(
        self, http: httpx.AsyncClient, fan: _Fan, events: list[dict[str, Any]]
    ) -> None:
        session = await self._session(http, fan)
        r = await http.post(
            "/api/analytics/events",
            json={"events": [{**e, "session_id": session} for e in events]},
            headers=self._bearer(fan.user_id),
        )
        _check(r)
        self.stats.events += len(events)

    def _browse_event(self, fan: _Fan) -> dict[str, Any]:
        kind = self.rng.choices([k for k, _ in BROWSE], [w for _, w in BROWSE])[0]
        show = self._show_for(fan)
        if kind == "page_view":
            path = self.rng.choice(PAGES)
            return {"event_type": kind, "page_url": SITE + path, "event_data": {"path": path}}
        if kind == "artist_view":
            artist = self.rng.choice(fan.artists or self._artists)
            return {"event_type": kind, "page_url": f"{SITE}/artists/{artist}",
                    "event_data": {"artist_id": artist}}  # fmt: skip
        if kind == "search":
            return {"event_type": kind, "page_url": SITE + "/search",
                    "event_data": {"query": show.artist[:4].lower(),
                                   "selected_artist_id": show.artist_id}}  # fmt: skip
        data: dict[str, Any] = {"show_id": show.id}
        if kind == "share":
            data["channel"] = self.rng.choice(("copy_link", "whatsapp", "instagram"))
        return {"event_type": kind, "page_url": f"{SITE}/shows/{show.id}", "event_data": data}

    async def _browse(self, db: Database, http: httpx.AsyncClient, n: int) -> None:
        by_fan: dict[str, tuple[_Fan, list[dict[str, Any]]]] = {}
        for _ in range(n):
            fan = self._fan()
            by_fan.setdefault(fan.user_id, (fan, []))[1].append(self._browse_event(fan))
        for fan, events in by_fan.values():
            await self._track(http, fan, events)

    async def _vote(self, db: Database, http: httpx.AsyncClient) -> None:
        fan = self._fan()
        show = self._show_for(fan)
        if not show.songs:
            return
        song = self.rng.choice(show.songs)
        async with db.as_user(fan.user_id) as conn:
            await conn.execute(read_sql(_SQL, "live_vote.sql"),
                               {"show_id": show.id, "song_id": song})  # fmt: skip
        await self._track(http, fan, [
            {"event_type": "show_view", "page_url": f"{SITE}/shows/{show.id}",
             "event_data": {"show_id": show.id}},
            {"event_type": "vote", "page_url": f"{SITE}/shows/{show.id}",
             "event_data": {"show_id": show.id, "song_id": song}},
        ])  # fmt: skip
        self.stats.votes += 1

    async def _follow(self, db: Database, http: httpx.AsyncClient) -> None:
        fan = self._fan()
        candidates = [a for a in self._artists if a not in fan.artists] or self._artists
        artist = self.rng.choice(candidates)
        async with db.as_user(fan.user_id) as conn:
            await conn.execute(read_sql(_SQL, "live_follow.sql"), {"artist_id": artist})
        fan.artists.append(artist)
        await self._track(http, fan, [
            {"event_type": "follow", "page_url": f"{SITE}/artists/{artist}",
             "event_data": {"artist_id": artist}},
        ])  # fmt: skip
        self.stats.follows += 1

    async def _send(self, http: httpx.AsyncClient, body: dict[str, Any]) -> None:
        r = await http.post(
            "/api/notifications/send", json=body,
            headers={**self._bearer(self.operator_id, role="service_role"),
                     "Idempotency-Key": uuid.uuid4().hex},
        )  # fmt: skip
        _check(r)
        self.stats.notifications += 1

    @staticmethod
    def _show_variables(show: _Show, reminder: str) -> dict[str, Any]:
        return {"artist_name": show.artist, "venue_name": f"{show.venue}, {show.city}",
                "show_date": f"{show.starts_at:%a %d %b %H:%M} UTC",
                "show_url": f"{SITE}/shows/{show.id}", "reminder_text": reminder,
                "total_votes": 0, "accuracy_percentage": 0}  # fmt: skip

    async def _notify(self, db: Database, http: httpx.AsyncClient) -> None:
        """A single fan hears of a show: an announcement or how the crowd voted."""
        fan = self._fan()
        show = self._show_for(fan)
        kind = self.rng.choice(("new_show_announced", "vote_summary"))
        title = (f"{show.artist} announced {show.city}" if kind == "new_show_announced"
                 else f"How fans predict {show.artist} in {show.city}")  # fmt: skip
        await self._send(http, {
            "userId": fan.user_id, "type": kind, "title": title,
            "message": f"{show.artist} at {show.venue}, {show.city}: make your prediction.",
            "data": {"showId": show.id}, "variables": self._show_variables(show, title),
        })  # fmt: skip

    async def _show_starts(self, db: Database, http: httpx.AsyncClient) -> None:
        """The next show "starts": followers look at it and a few get a reminder."""
        show = self._shows[self.stats.shows_started % len(self._shows)]
        followers = [f for f in self._fans if show.artist_id in f.artists] or [self._fan()]
        crowd = self.rng.sample(followers, min(len(followers), self.pace.reminder_recipients))
        for fan in crowd:
            await self._track(http, fan, [
                {"event_type": "show_view", "page_url": f"{SITE}/shows/{show.id}",
                 "event_data": {"show_id": show.id}},
            ])  # fmt: skip
        text = f"{show.artist} is performing tonight at {show.venue}, {show.city}!"
        await self._send(http, {
            "userIds": [f.user_id for f in crowd], "type": "show_reminder",
            "title": "Show Reminder", "message": text, "data": {"showId": show.id},
            "variables": self._show_variables(show, text),
        })  # fmt: skip
        self.stats.shows_started += 1


class _Refused(Exception):
    """The API answered with an error status."""


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise _Refused(f"{response.request.method} {response.request.url.path}: "
                       f"{response.status_code} {response.text[:200]}")  # fmt: skip
