"""Predicted setlists as the product serves them.

For an upcoming show the model is fitted on the artist's completed shows and its ranking
stored (`analytics.setlist_predictions`, append-only, closed once the show starts); a stored
prediction is reused while it is recent and no newer show has been played. `blend=True`
adds the model blended with the fans' votes (the `analytics.setlist_blend` SQL function,
the one definition the warehouse's scoring uses too). What the caller sees is read under
their own database role, so row-level security decides: anonymous visitors see upcoming
shows only.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import psycopg

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.errors import Problem
from mysetlist.ml.setlists.predictor import MODEL_NAME, predict_setlist
from mysetlist.ml.setlists.setlist_history import UpcomingShow
from mysetlist.ml.setlists.setlist_store import played_setlists
from mysetlist.ml.setlists.training import active_ranker

_PACKAGE = "mysetlist.ml.setlists"
REUSE_FOR = timedelta(minutes=10)
BLEND_MODEL = f"{MODEL_NAME}+crowd"


def _sql(name: str) -> str:
    return read_sql(_PACKAGE, name)


async def _store(conn: psycopg.AsyncConnection[Any], show_id: int, kind: str, model: str,
                 history_shows: int, voters: int, length: int,
                 songs: list[dict[str, Any]]) -> None:  # fmt: skip
    await conn.execute(
        _sql("insert_prediction.sql"),
        {"show_id": show_id, "kind": kind, "model": model, "history_shows": history_shows,
         "voters": voters, "predicted_length": length, "songs": orjson.dumps(songs).decode()},
    )  # fmt: skip


def _fresh(row: dict[str, Any] | None, now: Any, history_shows: int) -> bool:
    return (
        row is not None
        and row["history_shows"] == history_shows
        and now - row["made_at"] < REUSE_FOR
    )


async def _predict_model(conn: psycopg.AsyncConnection[Any], show: dict[str, Any]) -> None:
    history = await played_setlists(conn, show["artist_id"], before=show["starts_at"])
    shows = history.get(show["artist_id"], ("", []))[1]
    if not shows:
        raise NoHistory
    titles = {r["id"]: r["title"] for r in await fetch_all_in(
        conn, _sql("song_titles.sql"), {"artist_id": show["artist_id"]})}  # fmt: skip
    prediction = predict_setlist(
        shows,
        UpcomingShow(str(show["id"]), show["day"], show["city"], show["tour"]),
        await active_ranker(conn),
    )
    songs = [
        {"song_id": int(s.song), "title": titles.get(s.song, ""),
         "probability": s.probability, "reason": s.reason}
        for s in prediction.songs
    ]  # fmt: skip
    await _store(conn, show["id"], "model", prediction.model, len(shows), 0,
                 prediction.length, songs)  # fmt: skip


async def _predict_blend(
    conn: psycopg.AsyncConnection[Any], show: dict[str, Any], model: dict[str, Any]
) -> None:
    rows = await fetch_all_in(conn, _sql("blend_now.sql"), {"show_id": show["id"]})
    voters = rows[0]["voters"] if rows else 0
    songs = []
    for row in rows:
        share = row["crowd_share"] or 0.0
        reason = (f"picked by {round(100 * share)} % of {voters} fans"
                  if voters else "no fan has voted yet")  # fmt: skip
        if row["model_probability"] is not None:
            reason += f"; model {row['model_probability']:.2f}"
        songs.append({"song_id": row["song_id"], "title": row["title"],
                      "probability": round(row["probability"], 4), "reason": reason})  # fmt: skip
    await _store(conn, show["id"], "blend", BLEND_MODEL, model["history_shows"], voters,
                 model["predicted_length"], songs)  # fmt: skip


async def ensure_model_prediction(
    conn: psycopg.AsyncConnection[Any], show_id: int
) -> dict[str, Any] | None:
    """The show, after storing a model prediction if it is upcoming and none recent enough
    exists (in the caller's transaction); None when there is no such show."""
    show = await fetch_one_in(conn, _sql("show_for_prediction.sql"), {"show_id": show_id})
    if show is None or not show["upcoming"]:
        return show
    now = (await (await conn.execute("SELECT now()")).fetchone())[0]  # type: ignore[index]
    model = await fetch_one_in(
        conn, _sql("latest_prediction.sql"), {"show_id": show_id, "kind": "model"}
    )
    if not _fresh(model, now, show["history_shows"]):
        await _predict_model(conn, show)
    return show


async def predicted_setlist(
    db: Database, show_id: int, *, blend: bool, claims: Claims | None
) -> dict[str, Any]:
    """The show's prediction (made now if due), with its scores once the show is scored."""
    kind = "blend" if blend else "model"
    async with db.transaction() as conn:
        show = await ensure_model_prediction(conn, show_id)
        if show is None:
            raise Problem(404, "Not Found", f"no show {show_id}")
        if show["upcoming"] and blend:
            model = await fetch_one_in(
                conn, _sql("latest_prediction.sql"), {"show_id": show_id, "kind": "model"}
            )
            assert model is not None
            await _predict_blend(conn, show, model)
    # Read back under the caller's own role: RLS decides what they may see.
    reader = db.as_caller(claims) if claims is not None else db.as_role("anon", {"role": "anon"})
    async with reader as conn:
        prediction = await fetch_one_in(
            conn, _sql("latest_prediction.sql"), {"show_id": show_id, "kind": kind}
        )
        scores = await fetch_all_in(conn, _sql("prediction_scores.sql"), {"show_id": show_id})
    if prediction is None:
        raise Problem(
            404, "Not Found",
            f"no {kind} prediction of show {show_id} was made before it"
            if not show["upcoming"] else f"no {kind} prediction of show {show_id} is visible",
        )  # fmt: skip
    return {
        "show_id": show_id,
        "artist_id": show["artist_id"],
        "starts_at": show["starts_at"],
        "status": show["status"],
        "upcoming": show["upcoming"],
        "prediction": {
            "kind": prediction["kind"],
            "model": prediction["model"],
            "made_at": prediction["made_at"],
            "history_shows": prediction["history_shows"],
            "voters": prediction["voters"],
            "predicted_length": prediction["predicted_length"],
            "songs": prediction["songs"],
        },
        "scores": scores,
    }


class NoHistory(Problem):
    def __init__(self) -> None:
        super().__init__(404, "Not Found", "the artist has no past setlists to learn from yet")


async def predict_upcoming(
    db: Database,
    *,
    horizon: timedelta = timedelta(days=14),
    stale_after: timedelta = timedelta(hours=6),
    limit: int = 5000,
) -> tuple[int, int]:
    """Store model predictions for upcoming shows that lack a recent one, one transaction
    per show (so every show is scored after it is played, whether or not a fan asked);
    returns (predicted, skipped for lack of history)."""
    rows = await db.fetch_all(
        _sql("upcoming_shows_due.sql"),
        {"horizon": horizon, "stale_after": stale_after, "limit": limit},
    )
    predicted = skipped = 0
    for row in rows:
        try:
            async with db.transaction() as conn:
                await ensure_model_prediction(conn, row["id"])
            predicted += 1
        except NoHistory:
            skipped += 1
    return predicted, skipped


async def leaderboard(db: Database, *, limit: int, claims: Claims | None) -> list[dict[str, Any]]:
    """The best predictors among fans (3+ scored shows), with the model and the crowd on
    the same shows as yardsticks; `is_you` marks the caller's own row."""
    reader = db.as_caller(claims) if claims is not None else db.as_role("anon", {"role": "anon"})
    async with reader as conn:
        return await fetch_all_in(conn, _sql("leaderboard.sql"), {"limit": limit})
