"""Reading the user feature store as model inputs: a matrix per cut-off, with labels for
training and evaluation, and the time splits every model here uses (never a random one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from mysetlist.core.db import fetch_all_in, fetch_one_in, read_sql

_PACKAGE = "mysetlist.ml.features"

# The model inputs, in matrix column order (every numeric column of ml_user_features).
USER_FEATURES = (
    "tenure_days", "days_since_last_active", "active_days_7", "active_days_prev_7",
    "active_days_28", "active_days_56", "events_7", "events_prev_7", "events_28",
    "sessions_28", "session_seconds_28", "page_views_28", "votes_28", "follows_28",
    "searches_28", "engagement_7", "engagement_prev_7", "engagement_28", "activity_trend",
    "engagement_decline", "activity_rate", "missed_active_days", "mean_gap_days",
    "longest_gap_days", "silence_ratio", "sessions_3", "sessions_7", "sessions_56",
    "session_rate", "session_ratio_3", "session_ratio_7", "session_ratio_14",
    "session_decline_14", "hours_since_last_event", "silence_log_probability",
)  # fmt: skip


class NotEnoughHistory(RuntimeError):
    """The feature store holds too few days (or rows) for a time split."""


@dataclass(frozen=True)
class FeatureFrame:
    """Rows of user features (one per user and cut-off), with labels when read for training."""

    as_of: NDArray[Any]  # datetime64[D]
    user_ids: list[str]
    x: NDArray[np.float64]
    churned: NDArray[np.bool_]  # no activity in the horizon after the cut-off
    engagement_next_7: NDArray[np.float64]

    def column(self, name: str) -> NDArray[np.float64]:
        return self.x[:, USER_FEATURES.index(name)]

    def where(self, mask: NDArray[np.bool_]) -> FeatureFrame:
        return FeatureFrame(
            self.as_of[mask], [u for u, keep in zip(self.user_ids, mask, strict=True) if keep],
            self.x[mask], self.churned[mask], self.engagement_next_7[mask],
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.user_ids)


def _frame(rows: list[dict[str, Any]]) -> FeatureFrame:
    x = np.array([[float(r[f]) for f in USER_FEATURES] for r in rows], dtype=np.float64)
    return FeatureFrame(
        as_of=np.array([r["as_of"] for r in rows], dtype="datetime64[D]"),
        user_ids=[str(r["user_id"]) for r in rows],
        x=x.reshape(len(rows), len(USER_FEATURES)),
        churned=np.array([not r.get("active_after", True) for r in rows], dtype=bool),
        engagement_next_7=np.array([float(r.get("engagement_next_7", 0.0)) for r in rows]),
    )


async def feature_days(conn: psycopg.AsyncConnection[Any]) -> tuple[date, date] | None:
    row = await fetch_one_in(conn, read_sql(_PACKAGE, "feature_days.sql"))
    if row is None or row["first_day"] is None:
        return None
    return row["first_day"], row["last_day"]


async def labelled_rows(
    conn: psycopg.AsyncConnection[Any], cut_offs: list[date], *, horizon_days: int
) -> FeatureFrame:
    """Features as of each cut-off with their outcomes (the caller picks cut-offs whose
    outcome windows have closed)."""
    rows = await fetch_all_in(
        conn,
        read_sql(_PACKAGE, "training_rows.sql"),
        {"cut_offs": cut_offs, "horizon": horizon_days},
    )
    return _frame(rows)


async def rows_as_of(conn: psycopg.AsyncConnection[Any], day: date) -> FeatureFrame:
    """Features as of `day`, to score (no outcome read)."""
    return _frame(await fetch_all_in(conn, read_sql(_PACKAGE, "feature_rows.sql"), {"day": day}))


@dataclass(frozen=True)
class TimeSplit:
    """Cut-offs for fitting, calibrating (or validating) and testing, oldest first. Every
    outcome window of a fitting cut-off closes by the calibration cut-off, and those of
    the calibration cut-off by the test cut-off: each stage only learns from what was
    known at the time of the next."""

    fit: list[date]
    calibrate: date
    test: date


def time_split(
    first_day: date,
    last_day: date,
    *,
    horizon_days: int,
    fit_cut_offs: int = 30,
    step_days: int = 2,
) -> TimeSplit | None:
    """The latest split the feature days allow (None when there are too few days): the
    test cut-off is the last whose `horizon_days` outcome is known by `last_day`."""
    test = last_day - timedelta(days=horizon_days)
    calibrate = test - timedelta(days=horizon_days)
    newest_fit = calibrate - timedelta(days=horizon_days)
    fit = [newest_fit - timedelta(days=step_days * i) for i in range(fit_cut_offs)]
    fit = sorted(d for d in fit if d >= first_day)
    if not fit:
        return None
    return TimeSplit(fit=fit, calibrate=calibrate, test=test)


async def feature_split(
    conn: psycopg.AsyncConnection[Any], *, horizon_days: int
) -> tuple[TimeSplit, date]:
    """(the latest time split of the feature store's days, its newest feature day); raises
    NotEnoughHistory when it holds too few days for one."""
    days = await feature_days(conn)
    split = time_split(*days, horizon_days=horizon_days) if days else None
    if days is None or split is None:
        raise NotEnoughHistory(
            f"the feature store needs at least {3 * horizon_days + 1} days of features"
            " (run the ETL, then the feature build)"
        )
    return split, days[1]
