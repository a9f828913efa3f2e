"""Setlists from the platform's tables (`app.shows`, `app.setlist_songs`) as model input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg

from mysetlist.core.db import fetch_all_in, read_sql
from mysetlist.ml.setlists.setlist_history import PlayedShow

_PACKAGE = "mysetlist.ml.setlists"


async def played_setlists(
    conn: psycopg.AsyncConnection[Any],
    artist_id: int | None = None,
    before: datetime | None = None,
) -> dict[int, tuple[str, list[PlayedShow]]]:
    """Per artist id: its name and the completed shows (that started before `before`) with
    their setlists as song ids, oldest first."""
    rows = await fetch_all_in(
        conn,
        read_sql(_PACKAGE, "played_setlists.sql"),
        {"artist_id": artist_id, "before": before or datetime.max.replace(tzinfo=UTC)},
    )
    by_artist: dict[int, tuple[str, list[PlayedShow]]] = {}
    for row in rows:
        name, shows = by_artist.setdefault(row["artist_id"], (row["artist"], []))
        shows.append(
            PlayedShow(
                str(row["show_id"]),
                row["day"],
                name,
                tuple(dict.fromkeys(str(song) for song in row["songs"])),
                None,
                row["city"],
                row["tour"],
            )
        )
    return by_artist


def by_unique_name(
    setlists: dict[int, tuple[str, list[PlayedShow]]],
) -> dict[str, list[PlayedShow]]:
    """Keyed by artist name, with the id appended where two artists share a name."""
    counts: dict[str, int] = {}
    for name, _ in setlists.values():
        counts[name] = counts.get(name, 0) + 1
    return {
        (name if counts[name] == 1 else f"{name} #{artist_id}"): shows
        for artist_id, (name, shows) in setlists.items()
    }
