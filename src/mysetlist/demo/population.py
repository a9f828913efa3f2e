"""The fans: who they are, when they signed up, what they like, how active they are, who churns.

Pure generation (numpy, no database). Everything latent here is the ground truth that goes
to `demo_truth`: genre tastes (a Dirichlet draw per user), an activity level (expected
sessions per day, heavy-tailed), a setlist-prediction skill, and for a planted share of
users a churn date at which their activity, after ramping down, stops for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import NDArray

from mysetlist.demo import vocabulary as words
from mysetlist.demo.catalog import DAY_US, HOUR_US

LAUNCH_COHORT_SHARE = 0.25  # signed up in the first tenth of the history (the launch)
ACTIVITY_SIGMA = 1.1  # lognormal spread of sessions per day: a few fans do most of it
NO_CHURN = np.int64(-1)


@dataclass
class Population:
    user_no: NDArray[np.int64]  # 1-based; email user<no>@example.test
    user_id_bytes: NDArray[np.uint8]  # (n, 16) uuid7 bytes (signup time), from the seed
    display_names: list[str]
    region: NDArray[np.int64]  # index into vocabulary.USER_REGIONS
    tz_offset_us: NDArray[np.int64]
    signup_us: NDArray[np.int64]
    activity: NDArray[np.float64]  # expected sessions per day while active
    skill: NDArray[np.float64]  # setlist prediction skill in [0, 1]
    taste: NDArray[np.float64]  # (n, genres), rows sum to 1
    churns: NDArray[np.bool_]
    decay_start_us: NDArray[np.int64]  # NO_CHURN when the user does not churn
    churn_us: NDArray[np.int64]  # NO_CHURN when the user does not churn

    def __len__(self) -> int:
        return len(self.user_no)

    def activity_multiplier(
        self, users: NDArray[np.int64], at_us: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        """How much of their usual activity `users` show at `at_us` (1, ramping to 0)."""
        start = self.decay_start_us[users]
        end = self.churn_us[users]
        span = np.maximum(end - start, 1).astype(np.float64)
        ramp = np.clip((end - at_us) / span, 0.0, 1.0)
        return np.where(self.churns[users], ramp, 1.0)


def _uuid7_bytes(rng: np.random.Generator, created_us: NDArray[np.int64]) -> NDArray[np.uint8]:
    """RFC 9562 version 7 ids (48-bit Unix milliseconds, then random bits): time-ordered like
    the ids many apps issue today, which also keeps index inserts local when loading."""
    raw = rng.integers(0, 256, (len(created_us), 16), dtype=np.uint8)
    millis = (created_us // 1000).astype(">u8").view(np.uint8).reshape(-1, 8)
    raw[:, :6] = millis[:, 2:]
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x70  # version 7
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 9562 variant
    return raw


def generate_population(
    rng: np.random.Generator,
    *,
    users: int,
    genres: int,
    history_start_us: int,
    as_of_us: int,
    churn_share: float,
    mean_sessions_per_day: float,
    taste_concentration: float,
) -> Population:
    span = as_of_us - history_start_us
    as_of = datetime.fromtimestamp(as_of_us / 1e6, UTC)

    # Signup cohorts: a launch wave, then growth (density rising over time).
    launch = rng.random(users) < LAUNCH_COHORT_SHARE
    fraction = np.where(launch, 0.1 * rng.random(users), np.sqrt(rng.random(users)))
    latest_signup = as_of_us - HOUR_US
    signup = history_start_us + (fraction * (latest_signup - history_start_us)).astype(np.int64)
    signup = np.sort(signup)  # user numbers follow signup order, like a real sequence

    weights = np.array([w for _, _, w in words.USER_REGIONS])
    region = rng.choice(len(words.USER_REGIONS), size=users, p=weights / weights.sum())
    offsets = np.array(
        [
            int((as_of.astimezone(ZoneInfo(tz)).utcoffset() or timedelta(0)).total_seconds() * 1e6)
            for tz, _, _ in words.USER_REGIONS
        ],
        dtype=np.int64,
    )
    first = rng.integers(0, len(words.FIRST_NAMES), users)
    last = rng.integers(0, len(words.LAST_NAMES), users)
    names = [
        f"{words.FIRST_NAMES[f]} {words.LAST_NAMES[g][0]}."
        for f, g in zip(first, last, strict=True)
    ]

    mu = np.log(mean_sessions_per_day) - ACTIVITY_SIGMA**2 / 2
    activity = np.clip(rng.lognormal(mu, ACTIVITY_SIGMA, users), 0.01, 25.0)
    skill = rng.beta(0.6, 2.2, users)
    taste = rng.dirichlet(np.full(genres, taste_concentration), users)

    # Churners: their activity ramps down and stops at a date inside the history, after a
    # minimum tenure and early enough before "now" that the silence is observable.
    days = span / DAY_US
    min_tenure = int(np.clip(days * 0.25, 1, 14) * DAY_US)
    quiet_tail = int(np.clip(days * 0.15, 1, 7) * DAY_US)
    lo = signup + min_tenure
    hi = np.full(users, as_of_us - quiet_tail)
    eligible = lo < hi
    p = min(1.0, churn_share * users / max(int(eligible.sum()), 1))
    churns = eligible & (rng.random(users) < p)
    churn_at = lo + (rng.random(users) * np.maximum(hi - lo, 0)).astype(np.int64)
    ramp = (rng.uniform(0.25, 1.0, users) * np.minimum(21 * DAY_US, churn_at - signup)).astype(
        np.int64
    )
    return Population(
        user_no=np.arange(1, users + 1, dtype=np.int64),
        user_id_bytes=_uuid7_bytes(rng, signup),
        display_names=names,
        region=region.astype(np.int64),
        tz_offset_us=offsets[region],
        signup_us=signup,
        activity=activity,
        skill=skill,
        taste=taste,
        churns=churns,
        decay_start_us=np.where(churns, churn_at - ramp, NO_CHURN),
        churn_us=np.where(churns, churn_at, NO_CHURN),
    )
