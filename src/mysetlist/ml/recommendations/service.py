"""Serving recommendations: artists and their upcoming shows for a user, and similar fans.

Who may ask: a user for themself, an operator for anyone (403 otherwise); an unknown or
erased user is a 404. What is read about a user (their follows, their interaction row) is
read under the caller's own database role, so row-level security holds the first rule in
the database too. Answers are cached per user in Redis, keyed on the user's cache
generation (`core/user_cache.py`, bumped by tracking on follow/vote) and the model version,
so a follow, a vote or a newly promoted model makes the cached answer unreachable at once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import numpy as np
import orjson
import redis
import scipy.sparse as sp

from mysetlist.core.auth import Claims
from mysetlist.core.db import Database, Row, fetch_all_in, fetch_one_in, read_sql
from mysetlist.core.runtime import Runtime
from mysetlist.core.user_cache import cache_generation
from mysetlist.ml.errors import OnlyYourself, UnknownUser
from mysetlist.ml.model_registry import ActiveModel, ModelVersion
from mysetlist.ml.recommendations.algorithms import Content, ItemKNN
from mysetlist.ml.recommendations.config import RecommendationSettings
from mysetlist.ml.recommendations.training import (
    MODEL_NAME,
    RecommenderModel,
    interaction_rows,
    model_from_bytes,
)

log = logging.getLogger(__name__)
_PACKAGE = "mysetlist.ml.recommendations"
Kind = Literal["artists", "shows"]
_active: ActiveModel[RecommenderModel] | None = None


def active_model(settings: RecommendationSettings) -> ActiveModel[RecommenderModel]:
    """The served model, loaded as the owner: one artifact shared by every caller and kept
    in this process (`analytics.ml_models` holds model versions, no user's rows, and is no
    user role's to read). What it says about other fans reaches a caller only through the
    fan directory, read under the caller's role (`similar_users`)."""
    global _active
    if _active is None:
        _active = ActiveModel(
            MODEL_NAME, model_from_bytes, refresh_seconds=settings.model_refresh_seconds
        )
    return _active


def target_user(claims: Claims, user_id: str | None) -> str:
    """The user asked about: the caller, or anyone for an operator."""
    if user_id is None or user_id == claims.user_id:
        return claims.user_id
    if not claims.is_operator:
        raise OnlyYourself()
    return user_id


async def _followed(db: Database, claims: Claims, user_id: str) -> set[int]:
    async with db.as_caller(claims) as conn:
        row = await fetch_one_in(conn, read_sql(_PACKAGE, "user_state.sql"), {"user_id": user_id})
    if row is None:
        raise UnknownUser(user_id)
    return {int(a) for a in row["followed"]}


async def _cached(
    runtime: Runtime, settings: RecommendationSettings, key_parts: str, user_id: str
) -> tuple[str | None, Any]:
    """(cache key, cached answer or None); (None, None) when Redis is unavailable."""
    prefix = runtime.settings.redis_key_prefix
    try:
        generation = await cache_generation(runtime.redis, prefix, user_id)
        key = f"{prefix}:recommendations:{user_id}:{generation}:{key_parts}"
        hit = await runtime.redis.get(key)
    except redis.RedisError:
        return None, None
    return key, (orjson.loads(hit) if hit is not None else None)


async def _store(
    runtime: Runtime, settings: RecommendationSettings, key: str | None, answer: Any
) -> None:
    if key is None:
        return
    try:
        await runtime.redis.set(key, orjson.dumps(answer), ex=settings.cache_seconds)
    except redis.RedisError:
        log.info("recommendation cache unavailable; answer not cached")


async def user_history(
    db: Database, claims: Claims, settings: RecommendationSettings, user_id: str
) -> list[Row]:
    """`user_id`'s row of the interaction matrix, by the definition training reads, under
    the caller's own role."""
    async with db.as_caller(claims) as conn:
        return await interaction_rows(conn, settings, user_id=user_id)


async def _history_row(
    db: Database, claims: Claims, settings: RecommendationSettings, model: RecommenderModel,
    user_id: str,
) -> sp.csr_matrix:  # fmt: skip
    cols, vals = [], []
    for r in await user_history(db, claims, settings, user_id):
        col = model.artist_index.get(int(r["item_id"]))
        if col is not None:  # an artist newer than the model is unknown to it
            cols.append(col)
            vals.append(float(r["weight"]))
    n = len(model.artist_ids)
    return sp.csr_matrix(
        (np.asarray(vals, np.float32), (np.zeros(len(cols), np.int64), cols)), shape=(1, n)
    )


def _reasons(
    model: RecommenderModel, history: sp.csr_matrix, picks: list[int], names: dict[int, Any]
) -> list[str]:
    """Per pick, the strongest evidence: a history artist most similar to it ("fans of X
    also follow"), else the genre it shares with the user's profile, else popularity."""
    knn = model.hybrid.components["item_knn"]
    content = model.hybrid.components["content"]
    assert isinstance(knn, ItemKNN)
    assert isinstance(content, Content)
    assert knn.similarity is not None
    hist = history.indices
    out = []
    for col in picks:
        artist = names.get(int(model.artist_ids[col]), {})
        if len(hist):
            sims = np.asarray(knn.similarity[hist, col].todense()).ravel()
            best = int(np.argmax(sims))
            if sims[best] > 0:
                source = names.get(int(model.artist_ids[hist[best]]), {}).get("name", "an artist")
                out.append(f"fans of {source} also follow {artist.get('name', 'this artist')}")
                continue
        user_genres = set()
        if len(hist):
            for other in hist:
                user_genres.update(names.get(int(model.artist_ids[other]), {}).get("genres", []))
        shared = [g for g in artist.get("genres", []) if g in user_genres]
        out.append(f"top in your genre {shared[0]}" if shared else "popular on MySetlist")
    return out


async def _cold_start(
    db: Database, settings: RecommendationSettings, followed: set[int], genres: list[str],
    limit: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """Popular and trending artists, in the user's chosen genres when given (else overall).
    Read as the owner: counts over every fan's follows and votes, of which no fan's own rows
    come out (under a fan's role, RLS would count only theirs)."""
    async with db.as_owner("why: popularity counts over every fan, no fan's rows out") as conn:
        rows = await fetch_all_in(
            conn, read_sql(_PACKAGE, "popular_artists.sql"),
            {"trending_days": settings.trending_days, "genres": genres,
             "limit": limit + len(followed)},
        )  # fmt: skip
    rows = [r for r in rows if int(r["artist_id"]) not in followed][:limit]
    top_f = max((r["followers"] for r in rows), default=1.0) or 1.0
    top_t = max((r["trending"] for r in rows), default=1.0) or 1.0
    out = []
    for r in rows:
        score = 0.5 * r["followers"] / top_f + 0.5 * r["trending"] / top_t
        genre = next((g for g in r["genres"] if g in genres), None)
        reason = (
            f"top in your genre {genre}" if genre
            else "trending now" if r["trending"] >= r["followers"] * 0.1 and r["trending"] > 0
            else "popular on MySetlist"
        )  # fmt: skip
        out.append({"artist_id": int(r["artist_id"]), "name": r["name"], "genres": r["genres"],
                    "score": round(float(score), 4), "reason": reason})  # fmt: skip
    return out


async def _artists(
    db: Database,
    claims: Claims,
    settings: RecommendationSettings,
    loaded: tuple[ModelVersion, RecommenderModel] | None,
    user_id: str,
    followed: set[int],
    genres: list[str],
    limit: int,
) -> tuple[list[dict[str, Any]], bool]:
    """(recommended artists, cold start?)."""
    if loaded is None:
        return await _cold_start(db, settings, followed, genres, limit), True
    model = loaded[1]
    history = await _history_row(db, claims, settings, model, user_id)
    if history.nnz == 0:
        return await _cold_start(db, settings, followed, genres, limit), True
    scores = (await asyncio.to_thread(model.hybrid.score, history))[0]
    for artist in followed:
        col = model.artist_index.get(artist)
        if col is not None:
            scores[col] = -np.inf
    k = min(limit, int(np.isfinite(scores).sum()))
    picks = [int(c) for c in np.argsort(-scores, kind="stable")[:k]]
    ids = [int(model.artist_ids[c]) for c in picks]
    wanted = ids + [int(model.artist_ids[c]) for c in history.indices]
    async with db.as_caller(claims) as conn:
        rows = await fetch_all_in(conn, read_sql(_PACKAGE, "artists_by_id.sql"), {"ids": wanted})
    names = {int(r["artist_id"]): r for r in rows}
    reasons = _reasons(model, history, picks, names)
    return [
        {"artist_id": a, "name": names.get(a, {}).get("name"),
         "genres": names.get(a, {}).get("genres", []),
         "score": round(float(scores[c]), 4), "reason": reason}
        for a, c, reason in zip(ids, picks, reasons, strict=True)
    ], False  # fmt: skip


async def recommendations(
    runtime: Runtime,
    settings: RecommendationSettings,
    claims: Claims,
    *,
    user_id: str | None,
    kind: Kind,
    limit: int,
    genres: list[str],
) -> dict[str, Any]:
    """`GET /api/analytics/recommendations`: artists, or upcoming shows of those artists."""
    user = target_user(claims, user_id)
    followed = await _followed(runtime.db, claims, user)
    loaded = await active_model(settings).get(runtime.db)
    version = f"v{loaded[0].id}" if loaded else "none"
    key, hit = await _cached(
        runtime, settings, f"{kind}:{limit}:{version}:{','.join(sorted(genres))}", user
    )
    if hit is not None:
        return {**hit, "cached": True}
    want = limit if kind == "artists" else max(limit, 10)
    artists, cold = await _artists(
        runtime.db, claims, settings, loaded, user, followed, genres, want
    )
    answer: dict[str, Any] = {
        "user_id": user, "type": kind, "cold_start": cold,
        "model": None if loaded is None else {
            "name": MODEL_NAME, "version": loaded[0].version,
            "policy": loaded[1].hybrid.policy},
    }  # fmt: skip
    if kind == "artists":
        answer["recommendations"] = artists
    else:
        answer["recommendations"] = await _shows(runtime.db, claims, artists, limit)
    await _store(runtime, settings, key, answer)
    return {**answer, "cached": False}


async def _shows(
    db: Database, claims: Claims, artists: list[dict[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Upcoming shows of the recommended artists, best artist first, soonest show first."""
    by_artist = {a["artist_id"]: a for a in artists}
    async with db.as_caller(claims) as conn:
        rows = await fetch_all_in(
            conn, read_sql(_PACKAGE, "upcoming_shows.sql"), {"artist_ids": list(by_artist)}
        )
    rank = {a["artist_id"]: n for n, a in enumerate(artists)}
    rows.sort(key=lambda r: (rank[int(r["artist_id"])], r["starts_at"]))
    out = []
    for r in rows[:limit]:
        artist = by_artist[int(r["artist_id"])]
        out.append({
            "show_id": int(r["show_id"]), "artist_id": artist["artist_id"],
            "artist": artist["name"], "starts_at": r["starts_at"].isoformat(),
            "venue": r["venue"], "city": r["city"], "country": r["country"],
            "score": artist["score"], "reason": f"upcoming show: {artist['reason']}",
        })  # fmt: skip
    return out


# Similar fans are drawn from this many nearest neighbours per fan asked for: only those
# the fan directory shows the caller (discoverable fans) are answered, so the pool is wider.
SIMILAR_POOL_FACTOR = 20
SIMILAR_POOL_MIN = 200


async def similar_users(
    runtime: Runtime,
    settings: RecommendationSettings,
    claims: Claims,
    *,
    user_id: str | None,
    limit: int,
) -> dict[str, Any]:
    """`POST /api/analytics/recommendations`: the user's nearest neighbours in the ALS
    space (cosine) among the fans who chose to be discoverable, each with the artists both
    follow as evidence. Fans see other fans' display names, never their ids; operators see
    ids (and every fan).

    Only the neighbour ranking is cached; who may be shown is read on every request under
    the caller's own role through the fan directory views (platform migration 0004), so a
    fan who turns `discoverable` off disappears from everyone's answer at once."""
    user = target_user(claims, user_id)
    await _followed(runtime.db, claims, user)
    loaded = await active_model(settings).get(runtime.db)
    version = f"v{loaded[0].id}" if loaded else "none"
    pool = max(limit * SIMILAR_POOL_FACTOR, SIMILAR_POOL_MIN)
    key, hit = await _cached(runtime, settings, f"similar-pool:{pool}:{version}", user)
    neighbours: list[tuple[str, float]] = [] if hit is None else [(u, s) for u, s in hit]
    if hit is None and loaded is not None:
        model = loaded[1]
        history = await _history_row(runtime.db, claims, settings, model, user)
        if history.nnz:
            neighbours = await asyncio.to_thread(_nearest, model, user, history, pool)
    if hit is None:
        await _store(runtime, settings, key, neighbours)
    similar: list[dict[str, Any]] = []
    if neighbours:
        async with runtime.db.as_caller(claims) as conn:
            rows = await fetch_all_in(
                conn, read_sql(_PACKAGE, "shared_artists.sql"),
                {"user_id": user, "candidates": [u for u, _ in neighbours], "limit": limit},
            )  # fmt: skip
        nearness = dict(neighbours)
        for r in rows:
            fan: dict[str, Any] = {
                "display_name": r["display_name"],
                "similarity": round(nearness[r["user_id"]], 4),
                "shared_artists": r["shared_artists"],
            }
            if claims.is_operator:
                fan["user_id"] = r["user_id"]
            similar.append(fan)
    return {"user_id": user, "similar_users": similar, "cached": hit is not None}


def _nearest(
    model: RecommenderModel, user: str, history: sp.csr_matrix, limit: int
) -> list[tuple[str, float]]:
    from mysetlist.ml.recommendations.algorithms import Als

    als = model.hybrid.components["als"]
    assert isinstance(als, Als)
    vector = als.fold_in(history)[0]
    others = als.user_factors
    norms = np.linalg.norm(others, axis=1) * (np.linalg.norm(vector) or 1.0)
    sims = (others @ vector) / np.where(norms == 0, 1.0, norms)
    me = model.user_index.get(user)
    if me is not None:
        sims[me] = -np.inf
    k = min(limit, len(sims) - (me is not None))
    if k <= 0:
        return []
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top])]
    return [(model.user_ids[i], float(sims[i])) for i in top if np.isfinite(sims[i])]
