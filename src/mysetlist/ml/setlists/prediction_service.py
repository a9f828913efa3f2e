"""Predicted setlists as the product serves them.

For an upcoming show the model is fitted on the artist's completed shows and its ranking
stored (`analytics.setlist_predictions`, append-only, closed once the show starts). `blend=True`
adds the model blended with the fans' votes (the `analytics.setlist_blend` SQL function,
the one definition the warehouse's scoring uses too). A prediction is stored once per
(show, kind, input state) and served from there: a read computes and stores only when what
the prediction is made from has changed (model: the model and the artist's played setlists;
blend: that model prediction and the show's votes), so reads never grow the table. What the
caller sees is read under their own database role, so row-level security decides: anonymous
visitors see upcoming shows only. The answer is shared by every caller for a short while
(`prediction_cache.py`), each read from it checked under the caller's role.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, fetch_all_in, fetch_one_in, read_sql
from mysetlist.ml.contract import PredictedSetlist
from mysetlist.ml.errors import NoHistory, NoPrediction, UnknownShow
from mysetlist.ml.setlists.prediction_cache import PredictionCache
from mysetlist.ml.setlists.predictor import MODEL_NAME, LoadedRanker, predict_setlist
from mysetlist.ml.setlists.setlist_history import UpcomingShow
from mysetlist.ml.setlists.setlist_store import played_setlists
from mysetlist.ml.setlists.training import active_ranker

_PACKAGE = "mysetlist.ml.setlists"
BLEND_MODEL = f"{MODEL_NAME}+crowd"


def _sql(name: str) -> str:
    return read_sql(_PACKAGE, name)


async def _store(conn: psycopg.AsyncConnection[Any], show_id: int, kind: str, model: str,
                 history_shows: int, voters: int, length: int,
                 songs: list[dict[str, Any]], input_state: str) -> bool:  # fmt: skip
    """Whether a row was added (not when a concurrent request stored the same state)."""
    cur = await conn.execute(
        _sql("insert_prediction.sql"),
        {"show_id": show_id, "kind": kind, "model": model, "history_shows": history_shows,
         "voters": voters, "predicted_length": length, "songs": orjson.dumps(songs).decode(),
         "input_state": input_state},
    )  # fmt: skip
    return await cur.fetchone() is not None


async def _is_stored(
    conn: psycopg.AsyncConnection[Any], show_id: int, kind: str, input_state: str
) -> bool:
    row = await fetch_one_in(
        conn, _sql("prediction_for_state.sql"),
        {"show_id": show_id, "kind": kind, "input_state": input_state},
    )  # fmt: skip
    return row is not None


async def model_input_state(
    conn: psycopg.AsyncConnection[Any], show_id: int
) -> tuple[str, LoadedRanker | None]:
    """(the model version and a digest of what it predicts the show from, that model): a
    newly promoted ranker is a new input state, so the show is predicted again."""
    ranker = await active_ranker(conn)
    row = await fetch_one_in(conn, _sql("model_input_state.sql"), {"show_id": show_id})
    assert row is not None
    version = f"v{ranker.version}" if ranker is not None else "fallback"
    return f"{MODEL_NAME}:{version}:{row['digest']}", ranker


async def blend_input_state(
    conn: psycopg.AsyncConnection[Any], show_id: int
) -> tuple[str, datetime]:
    """(the model prediction a blend uses now and a digest of the show's votes, the moment
    that state was read: the blend is computed as of it)."""
    row = await fetch_one_in(conn, _sql("blend_input_state.sql"), {"show_id": show_id})
    assert row is not None
    state = f"model#{row['model_prediction']}:votes:{row['votes']}:{row['votes_digest']}"
    return state, row["as_of"]


def _as_reader(
    db: Database, claims: Claims | None
) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
    """A transaction under the caller's own role (`anon` for a visitor): what they see of
    the stored predictions is for row-level security to decide."""
    return db.as_caller(claims) if claims is not None else db.as_role("anon", {"role": "anon"})


async def _predict_model(
    conn: psycopg.AsyncConnection[Any], show: dict[str, Any], input_state: str,
    ranker: LoadedRanker | None,
) -> bool:  # fmt: skip
    history = await played_setlists(conn, show["artist_id"], before=show["starts_at"])
    shows = history.get(show["artist_id"], ("", []))[1]
    if not shows:
        raise NoHistory()
    titles = {r["id"]: r["title"] for r in await fetch_all_in(
        conn, _sql("song_titles.sql"), {"artist_id": show["artist_id"]})}  # fmt: skip
    prediction = predict_setlist(
        shows,
        UpcomingShow(str(show["id"]), show["day"], show["city"], show["tour"]),
        ranker,
    )
    songs = [
        {"song_id": int(s.song), "title": titles.get(s.song, ""),
         "probability": s.probability, "reason": s.reason}
        for s in prediction.songs
    ]  # fmt: skip
    return await _store(conn, show["id"], "model", prediction.model, len(shows), 0,
                        prediction.length, songs, input_state)  # fmt: skip


async def _predict_blend(
    conn: psycopg.AsyncConnection[Any], show: dict[str, Any], model: dict[str, Any],
    input_state: str, as_of: datetime,
) -> None:  # fmt: skip
    rows = await fetch_all_in(conn, _sql("blend_now.sql"), {"show_id": show["id"], "as_of": as_of})
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
                 model["predicted_length"], songs, input_state)  # fmt: skip


async def _ensure_model_stored(
    conn: psycopg.AsyncConnection[Any], show_id: int
) -> tuple[dict[str, Any] | None, str | None, bool]:
    """(the show, the input state of its model prediction, whether a prediction was stored
    now), after storing that prediction if the show is upcoming and none was made from this
    input state (in the caller's transaction); (None, None, False) when there is no such
    show, no state once it has started."""
    show = await fetch_one_in(conn, _sql("show_for_prediction.sql"), {"show_id": show_id})
    if show is None or not show["upcoming"]:
        return show, None, False
    state, ranker = await model_input_state(conn, show_id)
    stored = False
    if not await _is_stored(conn, show_id, "model", state):
        stored = await _predict_model(conn, show, state, ranker)
    return show, state, stored


async def ensure_model_prediction(
    conn: psycopg.AsyncConnection[Any], show_id: int
) -> tuple[dict[str, Any] | None, bool]:
    """(the show, whether a prediction was stored now), after storing a model prediction if
    the show is upcoming and none was made from its current input state (in the caller's
    transaction); (None, False) when there is no such show."""
    show, _, stored = await _ensure_model_stored(conn, show_id)
    return show, stored


async def predicted_setlist(
    db: Database, cache: PredictionCache, show_id: int, *, blend: bool, claims: Claims | None
) -> dict[str, Any]:
    """The show's prediction (made now if its inputs changed), with its scores once the
    show is scored, as JSON values (a `PredictedSetlist`): from the shared cache when the
    caller may see the cached prediction and the show is as it says, else read and cached."""
    kind = "blend" if blend else "model"
    cached = await cache.get(show_id, kind)
    if cached is not None and await _still_current(db, claims, show_id, cached):
        answer: dict[str, Any] = cached["answer"]
        return answer
    prediction_id, fresh = await _predicted_setlist(db, show_id, kind=kind, claims=claims)
    answer = PredictedSetlist.model_validate(fresh).model_dump(mode="json")
    await cache.put(show_id, kind, prediction_id, answer)
    return answer


async def _still_current(
    db: Database, claims: Claims | None, show_id: int, cached: dict[str, Any]
) -> bool:
    answer = cached["answer"]
    async with _as_reader(db, claims) as conn:
        row = await fetch_one_in(
            conn, _sql("prediction_current.sql"),
            {"prediction_id": cached["prediction_id"], "show_id": show_id,
             "starts_at": answer["starts_at"], "status": answer["status"],
             "upcoming": answer["upcoming"]},
        )  # fmt: skip
    return row is not None


async def _predicted_setlist(
    db: Database, show_id: int, *, kind: str, claims: Claims | None
) -> tuple[int, dict[str, Any]]:
    """(the served prediction's id, the answer), read from the database."""
    blend = kind == "blend"
    # As the owner: storing a prediction is the service's own write (no caller may write
    # predictions), made from public show and setlist data and the fans' votes in aggregate;
    # what the caller then sees is read under their role below.
    async with db.as_owner("why: stores the show's prediction, the service's own write") as conn:
        show, state, _ = await _ensure_model_stored(conn, show_id)
        if show is None:
            raise UnknownShow(show_id)
        if state is not None and blend:
            model = await fetch_one_in(
                conn, _sql("prediction_for_state.sql"),
                {"show_id": show_id, "kind": "model", "input_state": state},
            )  # fmt: skip
            assert model is not None
            state, as_of = await blend_input_state(conn, show_id)
            if not await _is_stored(conn, show_id, "blend", state):
                await _predict_blend(conn, show, model, state, as_of)
    async with _as_reader(db, claims) as conn:
        prediction = await _served(conn, show_id, kind, state)
        scores = await fetch_all_in(conn, _sql("prediction_scores.sql"), {"show_id": show_id})
    if prediction is None:
        raise NoPrediction(
            f"no {kind} prediction of show {show_id} was made before it"
            if not show["upcoming"] else f"no {kind} prediction of show {show_id} is visible"
        )  # fmt: skip
    return prediction["id"], {
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


async def _served(
    conn: psycopg.AsyncConnection[Any], show_id: int, kind: str, input_state: str | None
) -> dict[str, Any] | None:
    """The stored prediction made from `input_state`; with none (the show has started), the
    latest made before the show."""
    if input_state is None:
        return await fetch_one_in(
            conn, _sql("latest_prediction.sql"), {"show_id": show_id, "kind": kind}
        )
    return await fetch_one_in(
        conn, _sql("prediction_for_state.sql"),
        {"show_id": show_id, "kind": kind, "input_state": input_state},
    )  # fmt: skip


async def predict_upcoming(
    db: Database,
    *,
    cache: PredictionCache | None = None,
    horizon: timedelta = timedelta(days=14),
    stale_after: timedelta = timedelta(hours=6),
    limit: int = 5000,
) -> tuple[int, int]:
    """Store model predictions for upcoming shows that lack a recent one, one transaction
    per show (so every show is scored after it is played, whether or not a fan asked), and
    drop the cached answers of the shows given a new one; returns (predicted, skipped for
    lack of history)."""
    rows = await db.fetch_all(
        _sql("upcoming_shows_due.sql"),
        {"horizon": horizon, "stale_after": stale_after, "limit": limit},
    )
    predicted = skipped = 0
    renewed: list[int] = []
    for row in rows:
        try:
            async with db.transaction() as conn:
                _, stored = await ensure_model_prediction(conn, row["id"])
            predicted += 1
            if stored:
                renewed.append(row["id"])
        except NoHistory:
            skipped += 1
    if cache is not None:
        await cache.forget(renewed)
    return predicted, skipped


async def leaderboard(db: Database, *, limit: int, claims: Claims | None) -> list[dict[str, Any]]:
    """The best predictors among fans (3+ scored shows), with the model and the crowd on
    the same shows as yardsticks; `is_you` marks the caller's own row."""
    async with _as_reader(db, claims) as conn:
        return await fetch_all_in(conn, _sql("leaderboard.sql"), {"limit": limit})
