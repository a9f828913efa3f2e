"""What a synthetic world is made of: its sizes, seed and behavioural knobs."""

from __future__ import annotations

from dataclasses import dataclass

from mysetlist.demo import vocabulary as words

DEFAULT_ARTISTS = 500
SHOWS_PER_ARTIST = 6
EVENTS_PER_SESSION = 4.5  # rough mean, browse events plus actions


@dataclass(frozen=True)
class WorldSpec:
    """What to build. `artists`/`shows` default to 500/3000, scaled down for small user
    counts (one artist per ten users, at least two per genre); explicit values are honoured."""

    users: int = 5000
    days: int = 120  # history: users sign up and act from `days` ago until now
    future_days: int = 60  # shows are scheduled up to this far ahead
    seed: int = 42
    artists: int | None = None
    shows: int | None = None
    genres: int = 20  # at most len(vocabulary.GENRES)
    churn_share: float = 0.15  # share of users planted to churn inside the history
    mean_sessions_per_day: float = 0.5  # mean of the heavy-tailed activity levels
    taste_concentration: float = 0.3  # Dirichlet alpha: lower means narrower tastes
    events: bool = True  # False: platform tables and truth only, no event history
    # Past tours before the history window (completed shows with setlists, no fan activity)
    # per artist on average, more for popular artists: what setlist prediction learns from.
    archive_shows_per_artist: float = 16.0
    # Load events into bare day tables, then index them on attach (needs an event table
    # holding nothing but demo events). None: when the world is big enough to gain.
    bulk_event_load: bool | None = None

    def __post_init__(self) -> None:
        if self.users < 1 or self.days < 1 or self.future_days < 0 or self.seed < 0:
            raise ValueError("users and days must be >= 1, future_days and seed >= 0")
        if not 1 <= self.genres <= len(words.GENRES):
            raise ValueError(f"genres must be between 1 and {len(words.GENRES)}")
        if not 0.0 <= self.churn_share <= 1.0:
            raise ValueError("churn_share must be between 0 and 1")
        if self.archive_shows_per_artist < 0:
            raise ValueError("archive_shows_per_artist must be >= 0")
        if self.mean_sessions_per_day <= 0 or self.taste_concentration <= 0:
            raise ValueError("mean_sessions_per_day and taste_concentration must be > 0")
        if (self.artists is not None and self.artists < 1) or (
            self.shows is not None and self.shows < 0
        ):
            raise ValueError("artists must be >= 1 and shows >= 0")

    @property
    def artist_count(self) -> int:
        if self.artists is not None:
            return self.artists
        return min(DEFAULT_ARTISTS, max(2 * self.genres, self.users // 10))

    @property
    def expected_events(self) -> int:
        """A rough size estimate (signups spread over the history halve the user-days)."""
        return int(self.users * self.days * 0.5 * self.mean_sessions_per_day * EVENTS_PER_SESSION)

    @property
    def show_count(self) -> int:
        return self.shows if self.shows is not None else SHOWS_PER_ARTIST * self.artist_count
