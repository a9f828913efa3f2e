"""Past setlists as plain data, and the CSV format `mysetlist ml evaluate-setlists` reads.

CSV columns: `show_id,date,artist,position,song` and optionally `venue,city,tour`, one row
per song played. A song played twice in one show (a reprise) counts once; songs keep the
order of their first position.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REQUIRED_COLUMNS = ("show_id", "date", "artist", "position", "song")
OPTIONAL_COLUMNS = ("venue", "city", "tour")
MAX_SONG_NAME = 300


@dataclass(frozen=True)
class PlayedShow:
    """One show of an artist with the distinct songs played, in order."""

    show_id: str
    date: date
    artist: str
    songs: tuple[str, ...]
    venue: str | None = None
    city: str | None = None
    tour: str | None = None


@dataclass(frozen=True)
class UpcomingShow:
    """What is known of a show before it happens."""

    show_id: str
    date: date
    city: str | None = None
    tour: str | None = None


class SetlistFileError(ValueError):
    """A malformed setlist file; the message names the file, line and column."""

    def __init__(self, path: str, line: int, column: str | None, problem: str) -> None:
        where = f"{path}:{line}" + (f": column {column!r}" if column else "")
        super().__init__(f"{where}: {problem}")


@dataclass
class _ShowRows:
    show_id: str
    date: date
    artist: str
    first_line: int
    venue: str | None
    city: str | None
    tour: str | None
    songs: dict[int, str] = field(default_factory=dict)  # position -> song


def _optional(row: dict[str, str | None], column: str) -> str | None:
    value = (row.get(column) or "").strip()
    return value or None


def parse_setlists(rows: Iterable[list[str]], path: str) -> dict[str, list[PlayedShow]]:
    """Parse CSV rows (header first) into each artist's shows in date order."""
    iterator = iter(rows)
    try:
        header = [name.strip().lower() for name in next(iterator)]
    except StopIteration:
        raise SetlistFileError(path, 1, None, "empty file, expected a header row") from None
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise SetlistFileError(path, 1, column, "missing from the header")
    shows: dict[str, _ShowRows] = {}
    for line, values in enumerate(iterator, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise SetlistFileError(
                path, line, None, f"{len(values)} fields, the header has {len(header)}"
            )
        row: dict[str, str | None] = dict(zip(header, values, strict=True))
        for column in REQUIRED_COLUMNS:
            if not (row[column] or "").strip():
                raise SetlistFileError(path, line, column, "is empty")
        show_id = (row["show_id"] or "").strip()
        artist = (row["artist"] or "").strip()
        song = (row["song"] or "").strip()
        if len(song) > MAX_SONG_NAME:
            raise SetlistFileError(path, line, "song", f"longer than {MAX_SONG_NAME} characters")
        try:
            day = date.fromisoformat((row["date"] or "").strip())
        except ValueError:
            raise SetlistFileError(path, line, "date", "not a date (YYYY-MM-DD)") from None
        try:
            position = int((row["position"] or "").strip())
        except ValueError:
            raise SetlistFileError(path, line, "position", "not a whole number") from None
        if position < 1:
            raise SetlistFileError(path, line, "position", "must be 1 or more")
        show = shows.get(show_id)
        if show is None:
            show = shows[show_id] = _ShowRows(
                show_id, day, artist, line,
                _optional(row, "venue"), _optional(row, "city"), _optional(row, "tour"),
            )  # fmt: skip
        elif show.date != day:
            raise SetlistFileError(
                path, line, "date", f"show {show_id} has date {show.date} on line {show.first_line}"
            )
        elif show.artist != artist:
            raise SetlistFileError(
                path, line, "artist",
                f"show {show_id} is by {show.artist!r} on line {show.first_line}",
            )  # fmt: skip
        if position in show.songs:
            raise SetlistFileError(
                path, line, "position", f"position {position} of show {show_id} appears twice"
            )
        show.songs[position] = song
    if not shows:
        raise SetlistFileError(path, 2, None, "no setlist rows after the header")
    by_artist: dict[str, list[PlayedShow]] = {}
    for show in shows.values():
        ordered = tuple(dict.fromkeys(song for _, song in sorted(show.songs.items())))
        by_artist.setdefault(show.artist, []).append(
            PlayedShow(show.show_id, show.date, show.artist, ordered,
                       show.venue, show.city, show.tour)
        )  # fmt: skip
    for history in by_artist.values():
        history.sort(key=lambda s: (s.date, s.show_id))
    return by_artist


def read_setlists_csv(path: Path) -> dict[str, list[PlayedShow]]:
    """Read a setlist CSV; raises SetlistFileError naming the line and column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return parse_setlists(csv.reader(handle), str(path))
    except UnicodeDecodeError as exc:
        raise SetlistFileError(str(path), 1, None, f"not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise SetlistFileError(str(path), 1, None, f"not CSV: {exc}") from None
