"""Writing the generated world into PostgreSQL with COPY, inside the caller's transaction.

Small text-bearing tables (artists, venues, songs, shows, users) go through psycopg's
`write_row`; the big fixed-width ones (setlist songs, follows, votes, tastes, the event
stage) through binary COPY from numpy (`copy_writer`). Events are staged in a temp table and
expanded set-based by `insert_staged_events.sql`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg import sql

from mysetlist.core.db import lock_key, read_sql
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.demo import vocabulary as words
from mysetlist.demo.activity import EVENT_TYPES, ActivityBatch
from mysetlist.demo.catalog import SHOW_STATUSES, Catalog, IdBases
from mysetlist.demo.copy_writer import Column, copy_columns, copy_rows, table_identifier
from mysetlist.demo.population import Population

PACKAGE = "mysetlist.demo"
ID_TABLES = ("artists", "venues", "shows", "songs", "setlist_votes")
EMAIL_DOMAIN = "example.test"
# The columns each text COPY writes, in the order of its rows' values.
ARTIST_COLUMNS = ("id", "name", "genres", "popularity", "created_at")
VENUE_COLUMNS = ("id", "name", "city", "country", "capacity", "timezone")
SHOW_COLUMNS = ("id", "artist_id", "venue_id", "starts_at", "status", "created_at", "tour")
USER_COLUMNS = (
    "id", "display_name", "email_encrypted", "email_hash", "timezone", "locale",
    "created_at", "last_active_at", "email_verified_at", "discoverable",
)  # fmt: skip
USER_PROFILE_COLUMNS = (
    "user_id", "user_no", "signup_at", "activity_level", "predictor_skill", "churns",
    "decay_starts_at", "churn_at",
)  # fmt: skip


def _at(us: int | np.integer[Any]) -> datetime:
    return datetime.fromtimestamp(int(us) / 1e6, UTC)


# Below these sizes DELETE is quicker than TRUNCATE (which recreates every partition's files).
TRUNCATE_FROM_VOTES = 20_000
SMALL_EVENT_TABLE = 200_000


def _statement(file: str, **identifiers: sql.Composable) -> sql.Composed:
    """The .sql file `file` with its `{name}` placeholders filled (tables named at run time)."""
    return sql.SQL(read_sql(PACKAGE, file)).format(**identifiers)  # type: ignore[arg-type]


def _lock_table(cur: psycopg.Cursor[Any], table: str) -> None:
    cur.execute(_statement("lock_table.sql", table=table_identifier(table)))


def _at_least(cur: psycopg.Cursor[Any], table: str, limit: int) -> bool:
    """Whether `table` holds `limit` rows or more (counting no further than that)."""
    cur.execute(_statement("at_least_rows.sql", table=table_identifier(table)), (limit, limit))
    row = cur.fetchone()
    return row is not None and bool(row["at_least"])


def _truncated(cur: psycopg.Cursor[Any], script: str) -> bool:
    """Run a TRUNCATE script in a savepoint; False when a table outside it references one
    of its tables (then nothing was truncated)."""
    try:
        with cur.connection.transaction():
            cur.execute(read_sql(PACKAGE, script))
    except psycopg.errors.FeatureNotSupported:  # "cannot truncate a table referenced in …"
        return False
    return True


def ensure_truth_schema(cur: psycopg.Cursor[Any]) -> None:
    """Create the `demo_truth` schema if this database has none yet (inside the caller's
    transaction; concurrent builds wait for each other here)."""
    cur.execute(read_sql(PACKAGE, "truth_schema_lock.sql"), (lock_key("mysetlist.demo_truth"),))
    cur.execute(read_sql(PACKAGE, "truth_schema.sql"))


def remove_previous_world(cur: psycopg.Cursor[Any]) -> bool:
    """Delete the demo world recorded in demo_truth (and only it), and the demo events.

    A big world in a database that holds nothing else, and that no other table references,
    is emptied with TRUNCATE (fast); otherwise exactly the recorded rows are deleted
    (foreign keys cascade as they would for any deleted user), leaving what the demo did
    not create.
    Returns whether the event table is now empty (it held demo events only)."""
    for table in ("users", "artists", "venues", "shows", "songs"):
        _lock_table(cur, f"app.{table}")
    cur.execute(read_sql(PACKAGE, "only_demo_rows_remain.sql"))
    row = cur.fetchone()
    only_demo = row is not None and bool(row["only_demo"])
    if not (
        only_demo
        and _at_least(cur, "app.setlist_votes", TRUNCATE_FROM_VOTES)
        and _truncated(cur, "truncate_demo_world.sql")
    ):
        cur.execute(read_sql(PACKAGE, "remove_previous_world.sql"))

    _lock_table(cur, LIVE_EVENT_TABLE)
    cur.execute(read_sql(PACKAGE, "only_demo_events.sql"))
    row = cur.fetchone()
    only_demo_events = row is not None and bool(row["only_demo"])
    if only_demo_events and _at_least(cur, LIVE_EVENT_TABLE, SMALL_EVENT_TABLE):
        cur.execute(read_sql(PACKAGE, "truncate_events.sql"))
    else:
        cur.execute(read_sql(PACKAGE, "delete_demo_events.sql"))
    return only_demo_events


def allocate_id_bases(cur: psycopg.Cursor[Any]) -> IdBases:
    """First free id of each identity-keyed table; the tables stay locked against writers
    until the transaction ends, so the ranges we fill are ours alone."""
    bases: dict[str, int] = {}
    for table in ID_TABLES:
        _lock_table(cur, f"app.{table}")
        cur.execute(_statement("next_id.sql", table=sql.Identifier("app", table)))
        row = cur.fetchone()
        assert row is not None
        bases[table] = int(row["next_id"])
    return IdBases(**bases)


def advance_sequences(cur: psycopg.Cursor[Any]) -> None:
    """Point each identity sequence past the highest id, so later inserts do not collide."""
    for table in ID_TABLES:
        cur.execute(
            _statement(
                "advance_sequence.sql",
                qualified=sql.Literal(f"app.{table}"),
                table=sql.Identifier("app", table),
            )
        )


def load_catalog(cur: psycopg.Cursor[Any], catalog: Catalog) -> None:
    cur.executemany(read_sql(PACKAGE, "genre_insert.sql"), [(g,) for g in catalog.genres])
    with copy_rows(cur, "app.artists", ARTIST_COLUMNS) as copy:
        for i, artist_id in enumerate(catalog.artist_ids):
            copy.write_row(
                (
                    int(artist_id),
                    catalog.artist_names[i],
                    catalog.artist_genres[i],
                    float(catalog.artist_popularity[i]),
                    _at(catalog.artist_created_us[i]),
                )
            )
    with copy_rows(cur, "app.venues", VENUE_COLUMNS) as copy:
        for venue_id, row in zip(catalog.venue_ids, catalog.venue_rows, strict=True):
            copy.write_row((int(venue_id), *row))
    with copy_rows(cur, "app.songs", ("id", "artist_id", "title")) as copy:
        artist_ids = catalog.artist_ids[catalog.song_artist]
        for song_id, artist_id, title in zip(
            catalog.song_ids, artist_ids, catalog.song_titles, strict=True
        ):
            copy.write_row((int(song_id), int(artist_id), title))
    with copy_rows(cur, "app.shows", SHOW_COLUMNS) as copy:
        announced = catalog.show_starts_us - 60 * 86_400_000_000
        for i, show_id in enumerate(catalog.show_ids):
            copy.write_row(
                (
                    int(show_id),
                    int(catalog.artist_ids[catalog.show_artist[i]]),
                    int(catalog.venue_ids[catalog.show_venue[i]]),
                    _at(catalog.show_starts_us[i]),
                    SHOW_STATUSES[catalog.show_status[i]],
                    _at(announced[i]),
                    catalog.show_tour[i],
                )
            )
    setlist = [
        Column("show_id", "int8", catalog.show_ids[catalog.setlist_show]),
        Column("position", "int2", catalog.setlist_position.astype(np.int16)),
        Column("song_id", "int8", catalog.song_ids[catalog.setlist_song]),
    ]
    with fk_checks_skipped(cur):
        copy_columns(cur, "app.setlist_songs", [setlist])
    for table, ids in (
        ("artists", catalog.artist_ids),
        ("venues", catalog.venue_ids),
        ("shows", catalog.show_ids),
        ("songs", catalog.song_ids),
    ):
        if len(ids):
            record_id_range(cur, table, int(ids.min()), int(ids.max()))


def record_id_range(cur: psycopg.Cursor[Any], table: str, first_id: int, last_id: int) -> None:
    """Note that the demo owns ids [first_id, last_id] of app.<table> (for the next replace)."""
    if last_id >= first_id:
        cur.execute(read_sql(PACKAGE, "record_id_range.sql"), (table, first_id, last_id))


def load_users(
    cur: psycopg.Cursor[Any],
    pop: Population,
    users: NDArray[np.int64],
    last_active_us: NDArray[np.int64],
    cipher: FieldCipher,
) -> None:
    """app.users rows of `users` (population indexes), with encrypted emails."""
    with copy_rows(cur, "app.users", USER_COLUMNS) as copy:
        for k, i in enumerate(users):
            email = f"user{pop.user_no[i]}@{EMAIL_DOMAIN}"
            timezone, locale, _ = words.USER_REGIONS[pop.region[i]]
            copy.write_row(
                (
                    uuid.UUID(bytes=pop.user_id_bytes[i].tobytes()),
                    pop.display_names[i],
                    cipher.encrypt(email, context=b"users.email"),
                    cipher.lookup_hash(email),
                    timezone,
                    locale,
                    _at(pop.signup_us[i]),
                    _at(last_active_us[k]) if last_active_us[k] >= 0 else None,
                    _at(pop.signup_us[i]),  # verified at signup: notify mails only verified
                    # a third of the fans chose to be found by other fans (similar fans,
                    # the setlist leaderboard); by number, so the world's draws are unchanged
                    bool(pop.user_no[i] % 3 == 0),
                )
            )


@contextmanager
def fk_checks_skipped(cur: psycopg.Cursor[Any]) -> Iterator[bool]:
    """Skip the per-row foreign-key triggers for the statements inside (what pg_restore's
    --disable-triggers does), when the role may (superuser, or granted the parameter).

    Only for rows the generator made consistent by construction: follows and votes name
    artists, shows and songs created in the same transaction (tests check it). Yields
    whether the checks are off."""
    try:
        with cur.connection.transaction():  # a savepoint: a refusal leaves no trace
            cur.execute(read_sql(PACKAGE, "fk_checks_off.sql"))
    except psycopg.errors.InsufficientPrivilege:
        yield False
        return
    yield True
    # (after an error the transaction is lost anyway; resetting then would only mask it)
    cur.execute(read_sql(PACKAGE, "fk_checks_on.sql"))


def load_follows_and_votes(
    cur: psycopg.Cursor[Any],
    pop: Population,
    catalog: Catalog,
    batch: ActivityBatch,
    first_vote_id: int,
) -> None:
    follows = [
        Column("user_id", "uuid", pop.user_id_bytes[batch.follow_user]),
        Column("artist_id", "int8", catalog.artist_ids[batch.follow_artist]),
        Column("created_at", "timestamptz", batch.follow_at),
    ]
    votes = [
        Column("id", "int8", first_vote_id + np.arange(len(batch.vote_user), dtype=np.int64)),
        Column("user_id", "uuid", pop.user_id_bytes[batch.vote_user]),
        Column("show_id", "int8", catalog.show_ids[batch.vote_show]),
        Column("song_id", "int8", catalog.song_ids[batch.vote_song]),
        Column("created_at", "timestamptz", batch.vote_at),
    ]
    with fk_checks_skipped(cur):
        copy_columns(cur, "app.follows", [follows])
        copy_columns(cur, "app.setlist_votes", [votes])


LIVE_EVENT_TABLE = "analytics.user_events"
BULK_EVENT_TABLE = "demo_truth.event_load"


def prepare_event_loading(
    cur: psycopg.Cursor[Any], first_day: datetime, last_day: datetime, *, bulk: bool
) -> str:
    """Get the day partitions ready; returns the table that `load_events` fills.

    `bulk` (only when the event table is empty): fill bare day tables and index them when
    they are attached (`finish_event_loading`), about twice as fast as inserting into the
    indexed partitions row by row."""
    prepare = "event_bulk_load_begin.sql" if bulk else "event_partitions_ensure.sql"
    cur.execute(read_sql(PACKAGE, prepare), (first_day.date(), last_day.date()))
    cur.execute(read_sql(PACKAGE, "create_event_stage.sql"))
    return BULK_EVENT_TABLE if bulk else LIVE_EVENT_TABLE


def finish_event_loading(cur: psycopg.Cursor[Any], target: str) -> None:
    if target == BULK_EVENT_TABLE:
        cur.execute(read_sql(PACKAGE, "event_bulk_load_finish.sql"))


def load_events(
    cur: psycopg.Cursor[Any], pop: Population, batch: ActivityBatch, target: str, id_secret: bytes
) -> int:
    """Stage one batch of events (binary COPY), expand it into `target` (see
    `prepare_event_loading`); visitor ids are derived from `id_secret` (demo_truth.world)."""
    cur.execute(read_sql(PACKAGE, "event_stage_clear.sql"))
    copy_columns(
        cur,
        "demo_event_stage",
        [
            [
                Column("user_id", "uuid", pop.user_id_bytes[batch.event_user]),
                Column("user_no", "int4", pop.user_no[batch.event_user].astype(np.int32)),
                Column("session_no", "int8", batch.event_session),
                Column("kind", "int2", batch.event_kind.astype(np.int16)),
                Column("ref_id", "int8", batch.event_ref),
                Column("extra_id", "int8", batch.event_extra),
                Column("created_at", "timestamptz", batch.event_at),
            ]
        ],
    )
    cur.execute(
        _statement("insert_staged_events.sql", target=table_identifier(target)),
        {
            "event_types": list(EVENT_TYPES),
            "pages": list(words.SITE_PAGES),
            "share_channels": list(words.SHARE_CHANNELS),
            "campaigns": [c for c, _ in words.NOTIFICATION_CAMPAIGNS],
            "campaign_channels": [ch for _, ch in words.NOTIFICATION_CAMPAIGNS],
            "id_secret": id_secret,
        },
    )
    return cur.rowcount


def load_user_truth(
    cur: psycopg.Cursor[Any], pop: Population, genres: list[str], users: NDArray[np.int64]
) -> None:
    """demo_truth.user_profile and user_taste rows of `users`."""
    with copy_rows(cur, "demo_truth.user_profile", USER_PROFILE_COLUMNS) as copy:
        for i in users:
            churns = bool(pop.churns[i])
            copy.write_row(
                (
                    uuid.UUID(bytes=pop.user_id_bytes[i].tobytes()),
                    int(pop.user_no[i]),
                    _at(pop.signup_us[i]),
                    float(pop.activity[i]),
                    float(pop.skill[i]),
                    churns,
                    _at(pop.decay_start_us[i]) if churns else None,
                    _at(pop.churn_us[i]) if churns else None,
                )
            )
    user_bytes = pop.user_id_bytes[users]
    copy_columns(
        cur,
        "demo_truth.user_taste",
        [
            [
                Column("user_id", "uuid", user_bytes),
                Column("genre", "text", genre),
                Column("weight", "float4", pop.taste[users, g].astype(np.float32)),
            ]
            for g, genre in enumerate(genres)
        ],
    )


def load_catalog_truth(cur: psycopg.Cursor[Any], catalog: Catalog) -> None:
    with copy_rows(
        cur, "demo_truth.artist_profile", ("artist_id", "primary_genre", "popularity")
    ) as copy:
        for i, artist_id in enumerate(catalog.artist_ids):
            copy.write_row(
                (
                    int(artist_id),
                    catalog.genres[catalog.artist_primary_genre[i]],
                    float(catalog.artist_popularity[i]),
                )
            )
    copy_columns(
        cur,
        "demo_truth.song_weight",
        [
            [
                Column("song_id", "int8", catalog.song_ids),
                Column("artist_id", "int8", catalog.artist_ids[catalog.song_artist]),
                Column("play_weight", "float4", catalog.song_play_weight.astype(np.float32)),
            ]
        ],
    )
