"""The synthetic world: consistent rows and events, planted truth visible in the data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from mysetlist.demo import loaders
from mysetlist.demo.world import WorldSpec, build_world, reload_events
from tests.demo.conftest import SMALL_WORLD, TEST_CIPHER, WORLD_NOW, BuiltWorld

pytestmark = pytest.mark.db


def _one(url: str, query: str, params: Any = None) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def _all(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def test_small_world_counts_match_the_database(scratch_url: str) -> None:
    url = scratch_url
    summary = build_world(url, SMALL_WORLD, now=WORLD_NOW, cipher=TEST_CIPHER)
    assert summary.users == _one(url, "SELECT count(*) FROM app.users") == 200
    assert summary.artists == _one(url, "SELECT count(*) FROM app.artists") == 40
    assert summary.shows == _one(url, "SELECT count(*) FROM app.shows")
    # the spec's shows fall in the history window (from its first day on); each artist's
    # past tours end two weeks before it
    history_start = WORLD_NOW - timedelta(days=SMALL_WORLD.days + 2)
    in_window = _one(url, "SELECT count(*) FROM app.shows WHERE starts_at >= %s", (history_start,))
    assert in_window == 240
    assert summary.shows - in_window >= 3 * 40
    assert summary.songs == _one(url, "SELECT count(*) FROM app.songs")
    assert summary.follows == _one(url, "SELECT count(*) FROM app.follows") > 200
    assert summary.votes == _one(url, "SELECT count(*) FROM app.setlist_votes") > 0
    assert summary.events == _one(url, "SELECT count(*) FROM analytics.user_events") > 1000
    assert summary.churners == _one(
        url, "SELECT count(*) FROM demo_truth.user_profile WHERE churns"
    )
    assert 0.05 * 200 <= summary.churners <= 0.25 * 200
    assert "200 users" in str(summary)
    assert "events" in str(summary)
    # every event type shows up, all from the demo source
    types = {r[0] for r in _all(url, "SELECT DISTINCT event_type FROM analytics.user_events")}
    assert types >= {"page_view", "artist_view", "show_view", "search", "vote", "follow"}
    assert _one(url, "SELECT count(*) FROM analytics.user_events WHERE source <> 'demo'") == 0


def _fingerprint(url: str) -> dict[str, Any]:
    return {
        "counts": _all(
            url,
            "SELECT (SELECT count(*) FROM app.users), (SELECT count(*) FROM app.follows),"
            " (SELECT count(*) FROM app.setlist_votes),"
            " (SELECT count(*) FROM analytics.user_events)",
        ),
        "users": _all(
            url, "SELECT id, display_name, timezone, created_at FROM app.users ORDER BY id LIMIT 5"
        ),
        "artists": _all(url, "SELECT id, name, genres FROM app.artists ORDER BY id LIMIT 5"),
        "votes": _all(
            url,
            "SELECT user_id, show_id, song_id, created_at FROM app.setlist_votes"
            " ORDER BY id LIMIT 5",
        ),
        "events": _all(
            url,
            "SELECT user_id, session_id, event_type, page_url, properties, created_at"
            " FROM analytics.user_events ORDER BY created_at, user_id, event_type LIMIT 10",
        ),
    }


def test_same_seed_same_world_other_seed_other_world(scratch_url: str) -> None:
    url = scratch_url
    spec = WorldSpec(users=60, days=7, seed=3)
    build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    first = _fingerprint(url)
    build_world(url, WorldSpec(users=60, days=7, seed=4), now=WORLD_NOW, cipher=TEST_CIPHER)
    other = _fingerprint(url)
    build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)  # replaces seed 4's world
    again = _fingerprint(url)
    assert again == first
    for key in ("users", "artists", "votes", "events"):
        assert other[key] != first[key], key


def test_replacing_the_world_keeps_rows_it_did_not_create(scratch_url: str) -> None:
    url = scratch_url
    try:
        _replace_around_foreign_rows(url)
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("DELETE FROM analytics.user_events WHERE source <> 'demo'")
            conn.execute("DELETE FROM app.users WHERE display_name = 'not demo'")
            conn.execute("DELETE FROM app.artists WHERE name IN ('Not Demo', 'After')")


def _replace_around_foreign_rows(url: str) -> None:
    spec = WorldSpec(users=30, days=5, seed=5)
    build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    with psycopg.connect(url) as conn:
        user = conn.execute(
            "INSERT INTO app.users (display_name) VALUES ('not demo') RETURNING id"
        ).fetchone()
        artist = conn.execute(
            "INSERT INTO app.artists (name, genres) VALUES ('Not Demo', '{jazz}') RETURNING id"
        ).fetchone()
        assert user is not None
        assert artist is not None
        conn.execute(
            "INSERT INTO app.follows (user_id, artist_id) VALUES (%s, %s)", (user[0], artist[0])
        )
        conn.execute(
            "INSERT INTO analytics.user_events (user_id, event_type, created_at, source)"
            " VALUES (%s, 'page_view', now(), 'api')",
            (user[0],),
        )
    summary = build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    assert _one(url, "SELECT count(*) FROM app.users") == 31
    assert _one(url, "SELECT count(*) FROM app.artists") == summary.artists + 1
    assert _one(url, "SELECT count(*) FROM app.follows WHERE user_id = %s", (user[0],)) == 1
    assert _one(url, "SELECT count(*) FROM analytics.user_events WHERE source = 'api'") == 1
    assert _one(url, "SELECT count(*) FROM app.setlist_votes") == summary.votes
    assert _one(url, "SELECT count(*) FROM analytics.user_events") == summary.events + 1
    # the new world's ids come after the foreign artist, and sequences point past them
    with psycopg.connect(url) as conn:
        fresh = conn.execute(
            "INSERT INTO app.artists (name) VALUES ('After') RETURNING id"
        ).fetchone()
    assert fresh is not None
    assert fresh[0] > _one(url, "SELECT max(id) FROM app.artists WHERE name <> 'After'")


def test_replacing_a_big_world_never_empties_a_table_it_does_not_know(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later capability's table referencing the world: its rows about demo users go with
    them (ON DELETE CASCADE), and its other rows stay (TRUNCATE … CASCADE would empty it)."""
    url = scratch_url
    monkeypatch.setattr(loaders, "TRUNCATE_FROM_VOTES", 0)  # treat any world as big
    spec = WorldSpec(users=30, days=5, seed=6)
    build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    with psycopg.connect(url) as conn:
        conn.execute(
            """CREATE TABLE public.later_capability (
                 note text, user_id uuid REFERENCES app.users ON DELETE CASCADE)"""
        )
        conn.execute(
            """INSERT INTO public.later_capability
               SELECT 'about a demo user', id FROM app.users LIMIT 1"""
        )
        conn.execute("INSERT INTO public.later_capability VALUES ('about no user', NULL)")
    try:
        summary = build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
        assert _all(url, "SELECT note FROM public.later_capability") == [("about no user",)]
        assert _one(url, "SELECT count(*) FROM app.users") == summary.users == 30
        assert _one(url, "SELECT count(*) FROM app.setlist_votes") == summary.votes
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("DROP TABLE public.later_capability")


def test_no_dangling_references(small_world: BuiltWorld) -> None:
    url = small_world.url
    checks = {
        "follow without user or artist": """SELECT count(*) FROM app.follows f
            LEFT JOIN app.users u ON u.id = f.user_id LEFT JOIN app.artists a ON a.id = f.artist_id
            WHERE u.id IS NULL OR a.id IS NULL""",
        "vote without user, show or song": """SELECT count(*) FROM app.setlist_votes v
            LEFT JOIN app.users u ON u.id = v.user_id LEFT JOIN app.shows s ON s.id = v.show_id
            LEFT JOIN app.songs g ON g.id = v.song_id
            WHERE u.id IS NULL OR s.id IS NULL OR g.id IS NULL""",
        "setlist song without show or song": """SELECT count(*) FROM app.setlist_songs x
            LEFT JOIN app.shows s ON s.id = x.show_id LEFT JOIN app.songs g ON g.id = x.song_id
            WHERE s.id IS NULL OR g.id IS NULL""",
        "event of an unknown user": """SELECT count(*) FROM analytics.user_events e
            LEFT JOIN app.users u ON u.id = e.user_id WHERE u.id IS NULL""",
    }
    for name, query in checks.items():
        assert _one(url, query) == 0, name


def test_votes_name_a_song_of_the_shows_artist_before_the_show(small_world: BuiltWorld) -> None:
    url = small_world.url
    wrong = _one(
        url,
        """SELECT count(*) FROM app.setlist_votes v
           JOIN app.shows s ON s.id = v.show_id JOIN app.songs g ON g.id = v.song_id
           WHERE g.artist_id <> s.artist_id OR v.created_at >= s.starts_at""",
    )
    assert wrong == 0
    # and only on shows of artists the voter follows
    unfollowed = _one(
        url,
        """SELECT count(*) FROM app.setlist_votes v JOIN app.shows s ON s.id = v.show_id
           WHERE NOT EXISTS (SELECT 1 FROM app.follows f
                             WHERE f.user_id = v.user_id AND f.artist_id = s.artist_id
                               AND f.created_at < v.created_at)""",
    )
    assert unfollowed == 0


def test_setlists_only_for_completed_past_shows(small_world: BuiltWorld) -> None:
    url = small_world.url
    misplaced = _one(
        url,
        """SELECT count(*) FROM app.setlist_songs x JOIN app.shows s ON s.id = x.show_id
           WHERE s.status <> 'completed' OR s.starts_at > %s""",
        (WORLD_NOW,),
    )
    assert misplaced == 0
    lengths = _all(
        url,
        """SELECT s.id, count(x.song_id), count(DISTINCT x.song_id), max(x.position),
                  bool_and(g.artist_id = s.artist_id)
           FROM app.shows s LEFT JOIN app.setlist_songs x ON x.show_id = s.id
           LEFT JOIN app.songs g ON g.id = x.song_id
           WHERE s.status = 'completed' GROUP BY s.id""",
    )
    assert lengths, "some shows are in the past"
    for _, n, distinct, last_position, own_songs in lengths:
        assert 3 <= n <= 30
        assert distinct == n == last_position
        assert own_songs
    future_completed = _one(
        url, "SELECT count(*) FROM app.shows WHERE status = 'completed' AND starts_at > %s",
        (WORLD_NOW,),
    )  # fmt: skip
    assert future_completed == 0


def test_churners_fall_silent_at_their_churn_date(small_world: BuiltWorld) -> None:
    url = small_world.url
    late = _one(
        url,
        """SELECT count(*) FROM analytics.user_events e
           JOIN demo_truth.user_profile p ON p.user_id = e.user_id
           WHERE p.churns AND e.created_at >= p.churn_at""",
    )
    assert late == 0
    before_signup = _one(
        url,
        """SELECT count(*) FROM analytics.user_events e JOIN app.users u ON u.id = e.user_id
           WHERE e.created_at < u.created_at""",
    )
    assert before_signup == 0
    future = "SELECT count(*) FROM analytics.user_events WHERE created_at > %s"
    assert _one(url, future, (WORLD_NOW,)) == 0
    # last_active_at is the last event
    mismatched = _one(
        url,
        """SELECT count(*) FROM app.users u
           WHERE u.last_active_at IS DISTINCT FROM
                 (SELECT max(created_at) FROM analytics.user_events e WHERE e.user_id = u.id)""",
    )
    assert mismatched == 0


def test_every_vote_and_follow_row_has_its_event(small_world: BuiltWorld) -> None:
    url = small_world.url
    votes_without_event = _one(
        url,
        """SELECT count(*) FROM app.setlist_votes v WHERE NOT EXISTS (
             SELECT 1 FROM analytics.user_events e
             WHERE e.user_id = v.user_id AND e.event_type = 'vote'
               AND e.created_at = v.created_at
               AND (e.properties->>'show_id')::bigint = v.show_id
               AND (e.properties->>'song_id')::bigint = v.song_id)""",
    )
    assert votes_without_event == 0
    assert _one(url, "SELECT count(*) FROM analytics.user_events WHERE event_type = 'vote'") == (
        small_world.summary.votes
    )
    follows_without_event = _one(
        url,
        """SELECT count(*) FROM app.follows f WHERE NOT EXISTS (
             SELECT 1 FROM analytics.user_events e
             WHERE e.user_id = f.user_id AND e.event_type = 'follow'
               AND e.created_at = f.created_at
               AND (e.properties->>'artist_id')::bigint = f.artist_id)""",
    )
    assert follows_without_event == 0
    # replaying follow/unfollow events gives exactly the follows table
    replayed = _all(
        url,
        """WITH last_action AS (
             SELECT DISTINCT ON (user_id, properties->>'artist_id')
                    user_id, (properties->>'artist_id')::bigint AS artist_id, event_type
             FROM analytics.user_events WHERE event_type IN ('follow', 'unfollow')
             ORDER BY user_id, properties->>'artist_id', created_at DESC)
           SELECT user_id, artist_id FROM last_action WHERE event_type = 'follow'
           EXCEPT SELECT user_id, artist_id FROM app.follows""",
    )
    assert replayed == []
    assert _one(url, "SELECT count(*) FROM analytics.user_events WHERE event_type = 'unfollow'") > 0


def test_events_carry_their_entities(small_world: BuiltWorld) -> None:
    url = small_world.url
    rows = _all(
        url,
        """SELECT event_type, page_url, properties FROM analytics.user_events
           WHERE event_type IN ('artist_view', 'show_view') ORDER BY created_at LIMIT 200""",
    )
    for event_type, page_url, properties in rows:
        key, path = (
            ("artist_id", "artists") if event_type == "artist_view" else ("show_id", "shows")
        )
        assert page_url == f"https://mysetlist.app/{path}/{properties[key]}"
    unknown = _one(
        url,
        """SELECT count(*) FROM analytics.user_events e
           WHERE (e.event_type = 'artist_view'
                  AND NOT EXISTS (SELECT 1 FROM app.artists a
                                  WHERE a.id = (e.properties->>'artist_id')::bigint))
              OR (e.event_type = 'show_view'
                  AND NOT EXISTS (SELECT 1 FROM app.shows s
                                  WHERE s.id = (e.properties->>'show_id')::bigint))""",
    )
    assert unknown == 0


def test_sessions_are_bursts_separated_by_at_least_an_hour(small_world: BuiltWorld) -> None:
    url = small_world.url
    longest = _one(
        url,
        """SELECT max(span) FROM (
             SELECT max(created_at) - min(created_at) AS span
             FROM analytics.user_events GROUP BY session_id) s""",
    )
    assert longest.total_seconds() < 3600
    overlapping = _one(
        url,
        """WITH s AS (SELECT user_id, session_id, min(created_at) AS lo, max(created_at) AS hi
                     FROM analytics.user_events GROUP BY user_id, session_id)
           SELECT count(*) FROM s a JOIN s b ON a.user_id = b.user_id
             AND a.session_id < b.session_id AND a.lo <= b.hi AND b.lo <= a.hi""",
    )
    assert overlapping == 0


def test_truth_is_recorded_and_emails_decrypt(small_world: BuiltWorld) -> None:
    url = small_world.url
    bad_taste_sums = _one(
        url,
        """SELECT count(*) FROM (SELECT user_id, sum(weight) AS total
             FROM demo_truth.user_taste GROUP BY user_id) t WHERE abs(total - 1) > 1e-3""",
    )
    assert bad_taste_sums == 0
    assert _one(url, "SELECT count(DISTINCT user_id) FROM demo_truth.user_taste") == 200
    assert _one(url, "SELECT count(*) FROM demo_truth.world") == 1
    user_no, blob = _one(
        url,
        """SELECT p.user_no, u.email_encrypted FROM app.users u
           JOIN demo_truth.user_profile p ON p.user_id = u.id ORDER BY p.user_no LIMIT 1""",
    )
    email = TEST_CIPHER.decrypt(bytes(blob), context=b"users.email")
    assert email == f"user{user_no}@example.test"
    # signup cohorts spread over the history
    days = _one(url, "SELECT count(DISTINCT created_at::date) FROM app.users")
    assert days >= SMALL_WORLD.days - 1
    # the truth schema is not readable by API users
    assert _one(url, "SELECT has_schema_privilege('authenticated', 'demo_truth', 'USAGE')") is False


def test_tastes_show_in_follows(small_world: BuiltWorld) -> None:
    """Users follow mostly artists of their top-3 genres, far above what following by
    popularity alone would give."""
    url = small_world.url
    observed, baseline = _one(
        url,
        """WITH top3 AS (
             SELECT user_id, genre FROM (
               SELECT user_id, genre,
                      row_number() OVER (PARTITION BY user_id ORDER BY weight DESC) AS r
               FROM demo_truth.user_taste) ranked WHERE r <= 3),
           follows AS (
             SELECT f.user_id, p.primary_genre FROM app.follows f
             JOIN demo_truth.artist_profile p ON p.artist_id = f.artist_id),
           by_popularity AS (
             SELECT t.user_id, sum(p.popularity) AS share
             FROM top3 t JOIN demo_truth.artist_profile p ON p.primary_genre = t.genre
             GROUP BY t.user_id)
           SELECT avg((EXISTS (SELECT 1 FROM top3 t
                               WHERE t.user_id = f.user_id AND t.genre = f.primary_genre))::int),
                  avg(coalesce(b.share, 0))
           FROM follows f LEFT JOIN by_popularity b ON b.user_id = f.user_id""",
    )
    print(f"follows in top-3 genres: {observed:.2f}, by popularity alone: {baseline:.2f}")
    # (a Dirichlet(0.3) taste over 20 genres puts ~0.63 of its mass on the top three)
    assert observed > 0.45
    assert observed > 2.5 * baseline


def test_skilled_predictors_pick_played_songs_more_often(small_world: BuiltWorld) -> None:
    url = small_world.url
    rows = _all(
        url,
        """SELECT p.predictor_skill > 0.5 AS skilled,
                  avg((x.song_id IS NOT NULL)::int) AS hit_rate, count(*)
           FROM app.setlist_votes v JOIN app.shows s ON s.id = v.show_id AND s.status = 'completed'
           JOIN demo_truth.user_profile p ON p.user_id = v.user_id
           LEFT JOIN app.setlist_songs x ON x.show_id = v.show_id AND x.song_id = v.song_id
           GROUP BY 1""",
    )
    rate = {skilled: float(hit) for skilled, hit, _ in rows}
    assert set(rate) == {True, False}
    assert rate[True] > rate[False] + 0.1


def test_bulk_event_load_attaches_indexed_day_partitions(scratch_url: str) -> None:
    url = scratch_url
    spec = WorldSpec(users=80, days=6, seed=9, bulk_event_load=True)
    summary = build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    assert _one(url, "SELECT count(*) FROM analytics.user_events") == summary.events > 0
    assert _one(url, "SELECT to_regclass('demo_truth.event_load')") is None
    day_partition = "analytics.user_events_20260228"
    assert (
        _one(
            url,
            "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %s::regclass",
            (day_partition,),
        )
        == "analytics.user_events"
    )
    parent_indexes = _one(
        url, "SELECT count(*) FROM pg_index WHERE indrelid = 'analytics.user_events'::regclass"
    )
    partition_indexes = _one(
        url, "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (day_partition,)
    )
    assert partition_indexes == parent_indexes > 0
    # a later build (bulk again, then row by row) replaces it cleanly
    build_world(url, spec, now=WORLD_NOW, cipher=TEST_CIPHER)
    row_by_row = build_world(
        url, WorldSpec(users=80, days=6, seed=9, bulk_event_load=False), now=WORLD_NOW,
        cipher=TEST_CIPHER,
    )  # fmt: skip
    assert row_by_row.events == summary.events
    assert _one(url, "SELECT count(*) FROM analytics.user_events") == summary.events


def test_reload_events_recreates_a_window_exactly(scratch_url: str) -> None:
    url = scratch_url
    build_world(url, WorldSpec(users=120, days=6, seed=21), now=WORLD_NOW, cipher=TEST_CIPHER)
    start, end = WORLD_NOW - timedelta(days=3), WORLD_NOW - timedelta(days=1)
    window = """SELECT user_id, session_id, event_type, page_url, properties, created_at
                FROM analytics.user_events WHERE created_at >= %s AND created_at < %s
                ORDER BY created_at, user_id, event_type, properties::text"""
    before = _all(url, window, (start, end))
    total = _one(url, "SELECT count(*) FROM analytics.user_events")
    assert before
    with psycopg.connect(url) as conn:
        conn.execute(
            "DELETE FROM analytics.user_events WHERE created_at >= %s AND created_at < %s",
            (start, end),
        )
    assert reload_events(url, start, end) == len(before)
    assert _all(url, window, (start, end)) == before
    # reloading a window that is already there replaces it (no duplicates)
    assert reload_events(url, start, end) == len(before)
    assert _one(url, "SELECT count(*) FROM analytics.user_events") == total


# Every column the world fills, except the emails' ciphertext (AES-GCM: a fresh nonce each
# time, by design); their keyed lookup hash is compared instead.
_WORLD_TABLES = {
    "app.users": "id, display_name, email_hash, timezone, locale, created_at",
    "app.artists": "*",
    "app.venues": "*",
    "app.shows": "*",
    "app.songs": "*",
    "app.setlist_songs": "*",
    "app.follows": "*",
    "app.setlist_votes": "*",
    "analytics.user_events": "user_id, session_id, anonymous_id, event_type, properties,"
    " page_url, created_at, source",
    "demo_truth.world": "seed, spec, history_start, as_of",
    "demo_truth.catalog_ids": "*",
    "demo_truth.user_profile": "*",
    "demo_truth.user_taste": "*",
    "demo_truth.artist_profile": "*",
    "demo_truth.song_weight": "*",
}


def _world_rows(url: str) -> dict[str, list[str]]:
    with psycopg.connect(url) as conn:
        return {
            table: sorted(repr(row) for row in conn.execute(f"SELECT {columns} FROM {table}"))
            for table, columns in _WORLD_TABLES.items()
        }


def test_same_seed_same_hour_identical_rows(fresh_database: Callable[[], str]) -> None:
    """`mysetlist demo --seed 42` twice in one hour makes the same world, row for row (the
    users' ids embed their signup time, so the present must not carry the run's seconds)."""
    spec = WorldSpec(users=40, days=5, seed=42)
    first, second = fresh_database(), fresh_database()
    build_world(first, spec, now=datetime(2026, 3, 1, 10, 5, 7, 123456, UTC), cipher=TEST_CIPHER)
    summary = build_world(
        second, spec, now=datetime(2026, 3, 1, 10, 58, 59, tzinfo=UTC), cipher=TEST_CIPHER
    )
    assert summary.as_of == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert _world_rows(first) == _world_rows(second)


def test_demo_truth_is_made_by_the_demo_not_by_migrations(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()  # migrated, as every deployment's database is
    assert _one(url, "SELECT to_regnamespace('demo_truth') IS NULL")
    build_world(url, WorldSpec(users=10, days=2, seed=1), now=WORLD_NOW, cipher=TEST_CIPHER)
    assert _one(url, "SELECT count(*) FROM demo_truth.world") == 1
    with pytest.raises(LookupError):
        reload_events(fresh_database(), WORLD_NOW - timedelta(days=1), WORLD_NOW)


def test_setlists_follow_tours_with_openers_and_artist_styles(small_world: BuiltWorld) -> None:
    """Each completed show belongs to a tour; within a tour the opener mostly holds; fixed
    artists repeat the previous set far more than rotating ones."""
    rows = _all(
        small_world.url,
        """SELECT s.artist_id, s.tour, array_agg(x.song_id ORDER BY x.position)
           FROM app.shows s JOIN app.setlist_songs x ON x.show_id = s.id
           WHERE s.status = 'completed' GROUP BY s.id ORDER BY s.artist_id, s.starts_at""",
    )
    assert all(tour for _, tour, _ in rows)
    same_opener = total = 0
    overlap: dict[int, list[float]] = {}
    for (artist, tour, songs), (prev_artist, prev_tour, prev_songs) in zip(
        rows[1:], rows[:-1], strict=True
    ):
        if artist == prev_artist and tour == prev_tour:
            total += 1
            same_opener += songs[0] == prev_songs[0]
            overlap.setdefault(artist, []).append(len(set(songs) & set(prev_songs)) / len(songs))
    assert same_opener >= 0.7 * total
    # the spread of per-artist repetition is what tells the styles apart
    means = sorted(sum(v) / len(v) for v in overlap.values() if len(v) >= 5)
    assert means[-1] - means[0] > 0.3
