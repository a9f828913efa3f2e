"""What the fans do, one chunk of users at a time: sessions, events, follows and votes.

Pure generation, vectorised with numpy (no per-event Python). The rows and the events are
made together so they agree: every follow row has its `follow` event, every vote row its
`vote` event, an unfollowed artist leaves a `follow` and an `unfollow` event and no row.

Timeline of a user: a signup session at `signup_at` (landing page, onboarding follows),
then on each day Poisson(activity level x weekday factor x churn ramp) sessions at local
evening-heavy hours; none after the churn date. A session is a burst of events seconds to
minutes apart. All times are Unix microseconds (int64).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mysetlist.demo import vocabulary as words
from mysetlist.demo.catalog import COMPLETED, DAY_US, HOUR_US, Catalog
from mysetlist.demo.population import Population

I64 = NDArray[np.int64]

EVENT_TYPES: tuple[str, ...] = (
    "page_view", "artist_view", "show_view", "search", "vote", "follow", "unfollow", "share",
    "notification_open", "notification_click",
)  # fmt: skip
(
    PAGE_VIEW, ARTIST_VIEW, SHOW_VIEW, SEARCH, VOTE, FOLLOW, UNFOLLOW, SHARE,
    NOTIFICATION_OPEN, NOTIFICATION_CLICK,
) = range(1, len(EVENT_TYPES) + 1)  # fmt: skip

SECOND_US = 1_000_000
# How a session opens, and what follows within it (browse events; actions come separately).
FIRST_EVENT = (
    (PAGE_VIEW, 0.68),
    (NOTIFICATION_OPEN, 0.12),
    (NOTIFICATION_CLICK, 0.1),
    (SEARCH, 0.1),
)
LATER_EVENT = (
    (ARTIST_VIEW, 0.34), (SHOW_VIEW, 0.29), (PAGE_VIEW, 0.17), (SEARCH, 0.12), (SHARE, 0.05),
    (NOTIFICATION_CLICK, 0.03),
)  # fmt: skip
# Local hour of day at which sessions start (evening-heavy, quiet at night).
HOUR_WEIGHTS = np.array(
    [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 3, 3, 3.5, 4, 4, 3.5, 3.5, 4, 5, 6, 7, 8, 8, 6, 4]
)
WEEKDAY_FACTOR = np.array([0.9, 0.9, 0.95, 1.0, 1.15, 1.25, 1.1])  # Monday .. Sunday
EVENTS_PER_SESSION_P = 0.38  # geometric: mean ~2.6 browse events
MAX_BROWSE_EVENTS = 20
MAX_GAP_US = 120 * 1_000_000  # so a session lasts under 45 minutes, actions included
MIN_SESSION_SEPARATION_US = HOUR_US  # sessions of one user never overlap
LAST_SESSION_MARGIN_US = 3 * HOUR_US  # sessions end well before "now" and churn dates
FOLLOWED_ARTIST_SHARE = 0.5  # artist pages viewed: followed artists vs. taste discovery
UNFOLLOW_SHARE = 0.06
ONBOARDING_FOLLOW_SHARE = 0.6  # of a user's follows, made in the signup session
VOTE_WINDOW_US = 21 * DAY_US  # fans predict setlists in the weeks before a show
# Chance that a fan predicts the setlist of a followed artist's show they could vote on.
BALLOT_BASE_CHANCE, BALLOT_ENGAGED_CHANCE = 0.06, 0.3
PICKS_PER_BALLOT = 4  # mean songs picked per ballot, beyond the first


@dataclass
class ActivityBatch:
    """One chunk's output. `user` arrays hold population indexes."""

    # events, sorted by time
    event_user: I64
    event_session: I64  # global session number
    event_kind: I64  # 1-based index into EVENT_TYPES
    event_ref: I64  # artist / show id, page or campaign number (1-based)
    event_extra: I64  # song id, search query length, share channel (1-based)
    event_at: I64
    # app.follows rows (after unfollows)
    follow_user: I64
    follow_artist: I64  # artist index
    follow_at: I64
    # app.setlist_votes rows
    vote_user: I64
    vote_show: I64  # show index
    vote_song: I64  # song index
    vote_at: I64
    sessions: int
    last_active_us: I64  # per user of the chunk; -1 if no event (cannot happen: signup session)


def _categorical(rng: np.random.Generator, table: tuple[tuple[int, float], ...], n: int) -> I64:
    values = np.array([v for v, _ in table], dtype=np.int64)
    p = np.array([w for _, w in table])
    return values[rng.choice(len(values), size=n, p=p / p.sum())]


class ArtistSampler:
    """Draws artists for users: a genre from the user's taste, then an artist of that genre
    by popularity (one vectorised searchsorted over per-genre cumulative weights)."""

    def __init__(self, catalog: Catalog, n_genres: int) -> None:
        genre = catalog.artist_primary_genre
        self.order = np.lexsort((np.arange(len(genre)), genre))  # artist indexes by genre
        sorted_genre = genre[self.order]
        pop = catalog.artist_popularity[self.order]
        totals = np.bincount(sorted_genre, weights=pop, minlength=n_genres)
        within = np.cumsum(pop) - np.concatenate([[0.0], np.cumsum(totals)])[sorted_genre]
        # genre g's artists occupy (g, g + 1] on this axis
        self.axis = sorted_genre + within / totals[sorted_genre]
        self.genre_has_artists = totals > 0

    def effective_taste(self, taste: NDArray[np.float64]) -> NDArray[np.float64]:
        """Tastes restricted to genres that have artists (renormalised)."""
        t: NDArray[np.float64] = taste * self.genre_has_artists
        normalised: NDArray[np.float64] = t / t.sum(axis=1, keepdims=True)
        return normalised

    def draw(self, rng: np.random.Generator, taste_cdf: NDArray[np.float64], users: I64) -> I64:
        """One artist index per entry of `users` (indexes into the rows of `taste_cdf`)."""
        r = rng.random(len(users))
        genre = (taste_cdf[users] < r[:, None]).sum(axis=1)
        genre = np.minimum(genre, taste_cdf.shape[1] - 1)
        position = np.searchsorted(self.axis, genre + rng.random(len(users)), side="left")
        position = np.minimum(position, len(self.axis) - 1)
        result: I64 = self.order[position]
        return result


@dataclass(frozen=True)
class Timeline:
    history_start_us: int
    as_of_us: int
    mean_sessions_per_day: float


def _sessions(
    rng: np.random.Generator, pop: Population, users: I64, timeline: Timeline
) -> tuple[I64, I64]:
    """(user, start) of every session of `users`, sorted by user then time."""
    first_day = timeline.history_start_us // DAY_US
    last_day = timeline.as_of_us // DAY_US
    day_start = (np.arange(first_day, last_day + 1, dtype=np.int64)) * DAY_US
    weekday = WEEKDAY_FACTOR[(np.arange(first_day, last_day + 1) + 3) % 7]  # 1970-01-01: Thu
    n_users, n_days = len(users), len(day_start)
    grid_users = np.repeat(users, n_days)
    grid_mid = np.tile(day_start + 12 * HOUR_US, n_users)
    rate = (
        pop.activity[users][:, None]
        * weekday[None, :]
        * pop.activity_multiplier(grid_users, grid_mid).reshape(n_users, n_days)
    )
    rate[(day_start[None, :] + DAY_US) <= pop.signup_us[users][:, None]] = 0.0
    counts = rng.poisson(rate).ravel()
    s_user = np.repeat(grid_users, counts)
    s_day = np.repeat(np.tile(day_start, n_users), counts)
    hour = rng.choice(24, size=len(s_user), p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    start = (
        s_day + hour * HOUR_US + rng.integers(0, HOUR_US, len(s_user)) - pop.tz_offset_us[s_user]
    )
    cut = np.full(len(pop), timeline.as_of_us - LAST_SESSION_MARGIN_US, dtype=np.int64)
    cut = np.where(pop.churns, np.minimum(cut, pop.churn_us - LAST_SESSION_MARGIN_US), cut)
    keep = (start > pop.signup_us[s_user] + 30 * 60 * SECOND_US) & (start < cut[s_user])
    # Everyone has their signup session.
    s_user = np.concatenate([users, s_user[keep]])
    start = np.concatenate([pop.signup_us[users], start[keep]])
    order = np.lexsort((start, s_user))
    s_user, start = s_user[order], start[order]
    # A session starting within the hour after the previous one is the same visit: drop it.
    separate = np.ones(len(s_user), dtype=bool)
    separate[1:] = (s_user[1:] != s_user[:-1]) | (
        start[1:] - start[:-1] >= MIN_SESSION_SEPARATION_US
    )
    return s_user[separate], start[separate]


def generate_activity(
    rng: np.random.Generator,
    pop: Population,
    catalog: Catalog,
    sampler: ArtistSampler,
    users: I64,
    timeline: Timeline,
    *,
    first_session_no: int,
) -> ActivityBatch:
    """Sessions, events, follows and votes of `users` (a contiguous range of indexes)."""
    u0 = int(users[0])
    n_users = len(users)
    taste_cdf = np.cumsum(sampler.effective_taste(pop.taste[users]), axis=1)
    mean_activity = timeline.mean_sessions_per_day

    # --- sessions -------------------------------------------------------------------------
    s_user, s_start = _sessions(rng, pop, users, timeline)
    n_sessions = len(s_user)
    s_local = s_user - u0
    s_first = np.searchsorted(s_local, np.arange(n_users + 1))  # per user: [first, next)
    session_no = first_session_no + np.arange(n_sessions, dtype=np.int64)

    # --- browse events inside sessions ----------------------------------------------------
    n_browse = np.minimum(rng.geometric(EVENTS_PER_SESSION_P, n_sessions), MAX_BROWSE_EVENTS)
    n_browse[s_first[:-1]] = np.maximum(n_browse[s_first[:-1]], 3)  # signup session
    e_session = np.repeat(np.arange(n_sessions), n_browse)
    first_of_session = np.concatenate([[0], np.cumsum(n_browse)[:-1]])
    is_first = np.zeros(len(e_session), dtype=bool)
    is_first[first_of_session] = True
    gap = np.clip(rng.lognormal(np.log(20 * SECOND_US), 1.0, len(e_session)), SECOND_US, MAX_GAP_US)
    gap = gap.astype(np.int64)
    gap[is_first] = 0
    elapsed = np.cumsum(gap)
    offset = elapsed - elapsed[first_of_session][e_session]
    duration = offset[np.cumsum(n_browse) - 1]  # per session
    e_user = s_user[e_session]
    e_at = s_start[e_session] + offset
    kind = np.where(
        is_first,
        _categorical(rng, FIRST_EVENT, len(e_session)),
        _categorical(rng, LATER_EVENT, len(e_session)),
    )
    kind[first_of_session[s_first[:-1]]] = PAGE_VIEW  # signup lands on a page

    # --- follows: taste-driven, mostly during onboarding ----------------------------------
    n_wanted = np.clip(
        1 + rng.poisson(2 + 2 * np.minimum(pop.activity[users] / mean_activity, 4.0)), 1, 40
    )
    want_user = np.repeat(np.arange(n_users), n_wanted)
    want_artist = sampler.draw(rng, taste_cdf, want_user)
    pair_key = want_user * len(catalog.artist_ids) + want_artist
    _, first_index = np.unique(pair_key, return_index=True)
    first_index.sort()  # keep draw order: a user's first draws are the onboarding follows
    f_local, f_artist = want_user[first_index], want_artist[first_index]
    f_rank = np.arange(len(f_local)) - np.searchsorted(f_local, f_local)
    f_count = np.bincount(f_local, minlength=n_users)
    onboarding = f_rank < np.ceil(ONBOARDING_FOLLOW_SHARE * f_count[f_local])
    user_sessions = s_first[f_local + 1] - s_first[f_local]
    f_session = np.where(
        onboarding,
        s_first[f_local],
        s_first[f_local] + (rng.random(len(f_local)) * user_sessions).astype(np.int64),
    )
    f_at = _time_in_session(rng, s_start, duration, f_session)

    # A few follows are undone in a later session: events stay, the row goes.
    last_session = s_first[f_local + 1] - 1
    can_undo = f_session < last_session
    undone = can_undo & (rng.random(len(f_local)) < UNFOLLOW_SHARE)
    later = f_session + 1 + (rng.random(len(f_local)) * (last_session - f_session)).astype(np.int64)
    uf_session = later[undone]
    uf_at = _time_in_session(rng, s_start, duration, uf_session)

    # --- votes: predictions for shows of followed artists, before the show ---------------
    kept = ~undone
    v = _ballots(rng, pop, catalog, users, f_local[kept], f_artist[kept], f_at[kept], s_local,
                 s_start, duration, timeline)  # fmt: skip
    ballot_session, ballot_at, ballot_show, vote_ballot, vote_song, vote_at = v

    # --- entities of browse events ---------------------------------------------------------
    ref = np.zeros(len(e_session), dtype=np.int64)
    extra = np.zeros(len(e_session), dtype=np.int64)
    local = e_user - u0
    needs_artist = np.isin(kind, (ARTIST_VIEW, SHOW_VIEW, SEARCH, SHARE))
    idx = np.flatnonzero(needs_artist)
    artist = sampler.draw(rng, taste_cdf, local[idx])
    # half of the artist pages are of artists the user follows (when they follow any)
    kept_local, kept_artist = f_local[kept], f_artist[kept]
    k_first = np.searchsorted(kept_local, np.arange(n_users + 1))
    k_count = (k_first[1:] - k_first[:-1])[local[idx]]
    use_followed = (k_count > 0) & (rng.random(len(idx)) < FOLLOWED_ARTIST_SHARE)
    pick = k_first[local[idx]] + (rng.random(len(idx)) * k_count).astype(np.int64)
    if len(kept_artist):
        artist = np.where(use_followed, kept_artist[np.minimum(pick, len(kept_artist) - 1)], artist)

    show = _next_show_of(catalog, artist, e_at[idx])
    as_show = np.isin(kind[idx], (SHOW_VIEW, SHARE))
    no_show = as_show & (show < 0)
    kind[idx[no_show]] = ARTIST_VIEW  # an artist with no shows at all: view the artist
    as_show &= ~no_show
    show_ids = catalog.show_ids[np.maximum(show, 0)] if len(catalog.show_ids) else show
    ref[idx] = np.where(as_show, show_ids, catalog.artist_ids[artist])
    searches = kind[idx] == SEARCH
    name_length = np.array([len(n) for n in catalog.artist_names], dtype=np.int64)[artist]
    query_length = np.minimum(rng.integers(2, 9, len(idx)), name_length)
    extra[idx[searches]] = query_length[searches]
    shares = kind[idx] == SHARE
    extra[idx[shares]] = rng.integers(1, len(words.SHARE_CHANNELS) + 1, int(shares.sum()))
    pages = kind == PAGE_VIEW
    page = rng.integers(1, len(words.SITE_PAGES) + 1, len(kind))
    page[first_of_session] = 1  # sessions that open on a page open on the home page
    ref[pages] = page[pages]
    notes = np.isin(kind, (NOTIFICATION_OPEN, NOTIFICATION_CLICK))
    ref[notes] = rng.integers(1, len(words.NOTIFICATION_CAMPAIGNS) + 1, int(notes.sum()))

    # --- assemble: browse events + follow/unfollow + ballots (show view, then votes) --------
    f_artist_ids = catalog.artist_ids[f_artist]
    uf_artist_ids = f_artist_ids[undone]
    ballot_show_ids = catalog.show_ids[ballot_show]
    parts = [
        (e_session, kind, ref, extra, e_at),
        (f_session, np.full(len(f_session), ARTIST_VIEW), f_artist_ids, 0 * f_at,
         f_at - 4 * SECOND_US),
        (f_session, np.full(len(f_session), FOLLOW), f_artist_ids, 0 * f_at, f_at),
        (uf_session, np.full(len(uf_session), UNFOLLOW), uf_artist_ids, 0 * uf_at, uf_at),
        (ballot_session, np.full(len(ballot_session), SHOW_VIEW), ballot_show_ids,
         0 * ballot_at, ballot_at - 5 * SECOND_US),
        (ballot_session[vote_ballot], np.full(len(vote_ballot), VOTE),
         ballot_show_ids[vote_ballot], catalog.song_ids[vote_song], vote_at),
    ]  # fmt: skip
    all_session = np.concatenate([p[0] for p in parts]).astype(np.int64)
    all_at = np.concatenate([p[4] for p in parts]).astype(np.int64)
    order = np.lexsort((all_at, all_session))
    all_session = all_session[order]
    event_user = s_user[all_session]
    last_active = np.full(n_users, -1, dtype=np.int64)
    np.maximum.at(last_active, event_user - u0, all_at[order])

    return ActivityBatch(
        event_user=event_user,
        event_session=session_no[all_session],
        event_kind=np.concatenate([p[1] for p in parts]).astype(np.int64)[order],
        event_ref=np.concatenate([p[2] for p in parts]).astype(np.int64)[order],
        event_extra=np.concatenate([p[3] for p in parts]).astype(np.int64)[order],
        event_at=all_at[order],
        follow_user=kept_local + u0,
        follow_artist=kept_artist,
        follow_at=f_at[kept],
        vote_user=s_user[ballot_session][vote_ballot],
        vote_show=ballot_show[vote_ballot],
        vote_song=vote_song,
        vote_at=vote_at,
        sessions=n_sessions,
        last_active_us=last_active,
    )


def _time_in_session(rng: np.random.Generator, s_start: I64, duration: I64, session: I64) -> I64:
    """A moment inside each given session (or just after its last browse event)."""
    span = duration[session] + 60 * SECOND_US
    result: I64 = (
        s_start[session] + 12 * SECOND_US + (rng.random(len(session)) * span).astype(np.int64)
    )
    return result


def _next_show_of(catalog: Catalog, artist: I64, at: I64) -> I64:
    """Per (artist, time): the artist's next show after `at`, else their latest; -1 if none."""
    lo, hi = catalog.show_start[artist], catalog.show_start[artist + 1]
    if len(catalog.show_ids) == 0:
        return np.full(len(artist), -1, dtype=np.int64)
    key_base = catalog.show_artist.astype(np.float64) * 1e13
    show_key = key_base + (catalog.show_starts_us - catalog.show_starts_us.min()) / 1e3
    wanted = artist * 1e13 + (at - catalog.show_starts_us.min()) / 1e3
    position = np.searchsorted(show_key, wanted)
    position = np.clip(position, lo, np.maximum(hi - 1, lo))
    result: I64 = np.where(hi > lo, position, -1)
    return result


def _ballots(
    rng: np.random.Generator,
    pop: Population,
    catalog: Catalog,
    users: I64,
    f_local: I64,
    f_artist: I64,
    f_at: I64,
    s_local: I64,
    s_start: I64,
    duration: I64,
    timeline: Timeline,
) -> tuple[I64, I64, I64, I64, I64, I64]:
    """Setlist predictions. A ballot is one user's picks for one show, cast in a session in
    the three weeks before the show (after following the artist); skilled users pick songs
    that get played, others pick at random.

    Returns (ballot session, ballot time, ballot show, vote's ballot, vote's song, vote time).
    """
    u0 = int(users[0])
    n_shows = catalog.show_start[f_artist + 1] - catalog.show_start[f_artist]
    pair = np.repeat(np.arange(len(f_local)), n_shows)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(n_shows) - n_shows, n_shows)
    show = catalog.show_start[f_artist][pair] + within
    user = f_local[pair]
    show_at = catalog.show_starts_us[show]
    cut = np.full(len(pop), timeline.as_of_us, dtype=np.int64)
    cut = np.where(pop.churns, np.minimum(cut, pop.churn_us), cut) - LAST_SESSION_MARGIN_US
    lo = np.maximum(f_at[pair] + 60 * SECOND_US, show_at - VOTE_WINDOW_US)
    hi = np.minimum(show_at - LAST_SESSION_MARGIN_US, cut[user + u0])

    # sessions of the user starting in [lo, hi): keys ordered like the sessions (user, time)
    base = timeline.history_start_us - DAY_US
    session_key = s_local * 10**10 + (s_start - base) // SECOND_US
    lo_index = np.searchsorted(
        session_key, user * 10**10 + (np.maximum(lo, base) - base) // SECOND_US
    )
    hi_index = np.searchsorted(
        session_key, user * 10**10 + (np.maximum(hi, base) - base) // SECOND_US
    )
    engagement = 1.0 - np.exp(-pop.activity[users] / timeline.mean_sessions_per_day)
    p_vote = BALLOT_BASE_CHANCE + BALLOT_ENGAGED_CHANCE * engagement[user]
    chosen = (hi > lo) & (hi_index > lo_index) & (rng.random(len(pair)) < p_vote)
    user, show = user[chosen], show[chosen]
    lo_index, hi_index = lo_index[chosen], hi_index[chosen]
    ballot_session = lo_index + (rng.random(len(user)) * (hi_index - lo_index)).astype(np.int64)
    ballot_at = _time_in_session(rng, s_start, duration, ballot_session)

    # picks: Gumbel top-k over the artist's songs, skill tilts towards the played songs
    artist = catalog.show_artist[show]
    first_song = catalog.song_start[artist]
    n_songs = catalog.song_start[artist + 1] - first_song
    width = catalog.played_slots.shape[1]
    slot = np.arange(width)
    valid = slot[None, :] < n_songs[:, None]
    song_index = np.minimum(first_song[:, None] + slot[None, :], len(catalog.song_ids) - 1)
    played = catalog.played_slots[show] & (catalog.show_status[show] == COMPLETED)[:, None]
    skill = pop.skill[user + u0][:, None]
    score = skill * (np.log(catalog.song_play_weight[song_index]) + 3.0 * played)
    keys = np.where(valid, score + rng.gumbel(size=valid.shape), -np.inf)
    picks = np.minimum(1 + rng.poisson(PICKS_PER_BALLOT, len(user)), np.minimum(n_songs, 15))
    ranked = np.argsort(-keys, axis=1, kind="stable")
    take = slot[None, :] < picks[:, None]
    vote_ballot = np.nonzero(take)[0]
    vote_slot = ranked[take]
    vote_song = first_song[vote_ballot] + vote_slot
    step = rng.integers(3 * SECOND_US, 12 * SECOND_US, len(vote_ballot))
    rank_in_ballot = np.nonzero(take)[1]
    vote_at = ballot_at[vote_ballot] + (rank_in_ballot + 1) * step
    return ballot_session, ballot_at, show, vote_ballot, vote_song, vote_at
