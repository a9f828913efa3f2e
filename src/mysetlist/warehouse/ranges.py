"""Which days a run loads, and the watermark that remembers how far the ETL got.

- `daily`: from the watermark's last full day (minus ETL_LOOKBACK_DAYS, for late events)
  to yesterday; with no watermark, from the first event within ETL_INITIAL_DAYS;
- `range`: the given `--from/--to`;
- `incremental`: the days of the events received since the watermark's position (today's
  partial day and late arrivals), as of a snapshot of the newest `received_at`.

The watermark is `analytics.watermarks` row `WATERMARK` (core.watermarks): `position` is
the last `received_at` an incremental run took, `last_full_day` the last closed day a
daily or range run loaded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mysetlist.core.db import fetch_all_in, fetch_one_in
from mysetlist.core.watermarks import advance_watermark, read_watermark
from mysetlist.warehouse.config import EtlConfig
from mysetlist.warehouse.run_state import Connection, RunState, day_bounds
from mysetlist.warehouse.sql_files import query

WATERMARK = "warehouse.events"
INCREMENTAL_MARGIN = timedelta(minutes=2)  # in-flight commits around the watermark


async def resolve_range(state: RunState) -> None:
    """Set the run's days, snapshot and (incremental) `since`, and record the range."""
    row = await fetch_one_in(state.control, query("run_today"))
    assert row is not None
    wm = await read_watermark(state.control, WATERMARK)
    today: date = row["today"]
    state.snapshot = row["now"]
    frm = state.row["from_day"]
    to = state.row["to_day"]
    if state.mode == "range":
        frm = frm or to
        to = to or today
        assert frm is not None
        state.voting_full = True
    elif state.mode == "daily":
        to = today - timedelta(days=1)
        if wm is not None and wm.last_full_day is not None:
            frm = wm.last_full_day + timedelta(days=1 - state.config.lookback_days)
        else:
            since = day_bounds(today - timedelta(days=state.config.initial_days))[0]
            first = await fetch_one_in(state.control, query("first_event_day"), {"since": since})
            frm = first["day"] if first and first["day"] else to
        state.voting_full = True
    else:
        await _resolve_incremental(state, today, wm.position if wm else None)
        return
    state.days = [] if frm > to else [frm + timedelta(days=i) for i in range((to - frm).days + 1)]
    await state.record_range(frm, to)


async def _resolve_incremental(state: RunState, today: date, last: datetime | None) -> None:
    window_start = _window_start(today)
    newest = await _newest_received(state.control, window_start, after=last)
    if newest is None:  # nothing received after the watermark
        state.days = []
        await state.record_range(None, None)
        return
    state.snapshot = newest
    state.since = (last - INCREMENTAL_MARGIN) if last is not None else window_start
    found = await fetch_all_in(
        state.control,
        query("incremental_days"),
        {"window_start": window_start, "since": state.since, "snapshot": newest},
    )
    state.days = [r["d"] for r in found]
    await state.record_range(
        state.days[0] if state.days else None, state.days[-1] if state.days else None
    )


async def advance(state: RunState) -> None:
    """After the day stage: incremental runs move the position to their snapshot, others
    the last full day to the newest closed day they loaded."""
    if state.incremental:
        await advance_watermark(
            state.control, WATERMARK, position=state.snapshot, run_id=state.run_id
        )
        return
    today = await state.today()
    closed = [d for d in state.days if d < today]
    if closed:
        await advance_watermark(
            state.control, WATERMARK, last_full_day=max(closed), run_id=state.run_id
        )


async def has_new_events(conn: Connection) -> bool:
    """Whether events arrived since the incremental watermark (a cheap pre-check, so the
    every-few-minutes schedule does not record empty runs)."""
    # The run's own window (since the start of yesterday by the database's clock) and
    # after the watermark: an arrival there is a new one.
    row = await fetch_one_in(conn, query("run_today"))
    assert row is not None
    wm = await read_watermark(conn, WATERMARK)
    after = wm.position if wm is not None else None
    return await _newest_received(conn, _window_start(row["today"]), after=after) is not None


def _window_start(today: date) -> datetime:
    """Where an incremental run's window starts: the start of yesterday (UTC)."""
    return day_bounds(today - timedelta(days=1))[0]


async def _newest_received(
    conn: Connection, window_start: datetime, *, after: datetime | None
) -> datetime | None:
    """The newest `received_at` of the events created since `window_start` and received
    after `after` (None: at any time); None when there is none. Both bounds are constants
    when the statement is planned, so only the window's partitions are planned and the
    received_at BRIN can skip what the last run read."""
    row = await fetch_one_in(
        conn, query("newest_received"), {"since": window_start, "after": after}
    )
    return row["newest"] if row else None


async def initial_load_pending(conn: Connection, config: EtlConfig) -> bool:
    """Whether no daily run has ever loaded the warehouse although there are events before
    today within ETL_INITIAL_DAYS (a fresh install, before its first ETL_SCHEDULE_CRON)."""
    wm = await read_watermark(conn, WATERMARK)
    if wm is not None and wm.last_full_day is not None:
        return False
    row = await fetch_one_in(
        conn,
        query("events_exist"),
        {
            "start": datetime.now(UTC) - timedelta(days=config.initial_days + 1),
            "end": day_bounds(datetime.now(UTC).date())[0],
        },
    )
    return bool(row and row["found"])
