"""Recommendation benchmark: (a) training time of the served hybrid on 100,000 users x
20,000 artists x 2,000,000 interactions (each component, then the artifact), (b) GET
/api/analytics/recommendations latency through `mysetlist api --workers 2` at a fixed
200 requests/s with a warm cache, cache misses reported separately, (c) similar-users
(POST) latency. One PostgreSQL and Redis: embedded, or `DATABASE_URL` / `REDIS_URL` (a
fresh database is created and dropped).

    python bench/recommend_bench.py                    # defaults below
    python bench/recommend_bench.py --users 20000 --interactions 400000 --runs 1
    python bench/recommend_bench.py --users 20000 --artists 3000 --interactions 300000 \
        --export-csv /tmp/planted      # the data as CSV for `mysetlist ml evaluate`

The data are planted tastes: each user has a favourite genre (70 % of their artists, by
popularity within it) and draws the rest by overall popularity (Zipf). Training uses fixed
hyper-parameters (the nightly job's tuning is the offline evaluation's, timed separately in
docs/performance.md); the model is registered in the registry as training would.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from ingest_bench import _send, api_server, bench_database, pct, servers

GENRES = 50
JWT_SECRET = "recommend-bench-secret-" + "x" * 32


def planted(users: int, artists: int, interactions: int, seed: int) -> Any:
    """(user index, artist index, weight, artist genre) arrays, deduplicated pairs."""
    rng = np.random.default_rng(seed)
    genre = rng.integers(0, GENRES, artists)
    pop = 1.0 / np.arange(1, artists + 1) ** 0.8
    rng.shuffle(pop)
    activity = rng.pareto(1.5, users) + 1.0
    draws = int(interactions * 1.35)  # duplicate pairs are merged, then cut to `interactions`
    u = rng.choice(users, size=draws, p=activity / activity.sum())
    favourite = rng.integers(0, GENRES, users)
    # within-genre draw: artists sorted by genre, cumulative popularity per genre
    order = np.argsort(genre, kind="stable")
    cum = np.cumsum(pop[order])
    starts = np.searchsorted(genre[order], np.arange(GENRES))
    ends = np.searchsorted(genre[order], np.arange(GENRES), side="right")
    base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    g = favourite[u]
    r = base[g] + rng.random(draws) * (cum[ends[g] - 1] - base[g])
    in_genre = order[np.minimum(np.searchsorted(cum, r), artists - 1)]
    overall = rng.choice(artists, size=draws, p=pop / pop.sum())
    a = np.where(rng.random(draws) < 0.7, in_genre, overall)
    pairs = np.unique(u.astype(np.int64) * artists + a)
    pairs = np.sort(rng.choice(pairs, size=min(interactions, len(pairs)), replace=False))
    weights = rng.integers(1, 6, len(pairs)).astype(np.float32)
    return pairs // artists, pairs % artists, weights, genre


def export_csv(folder: Path, users: int, artists: int, interactions: int, seed: int) -> None:
    """The planted data as the offline evaluation's CSV files (with headers)."""
    u, a, w, genre = planted(users, artists, interactions, seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "interactions.csv").open("w") as f:
        f.write("user_id,item_id,weight\n")
        f.writelines(f"u{ui},a{ai},{int(wi)}\n" for ui, ai, wi in zip(u, a, w, strict=True))
    with (folder / "tags.csv").open("w") as f:
        f.write("item_id,tag,weight\n")
        f.writelines(f"a{i},genre {g},1\n" for i, g in enumerate(genre))
    print(f"{len(u)} interactions of {users} users x {artists} artists in {folder}")


def train(users: int, artists: int, interactions: int, runs: int, seed: int) -> dict[str, Any]:
    import scipy.sparse as sp

    from mysetlist.ml.recommendations.algorithms import COMPONENTS, Hybrid, make_component
    from mysetlist.ml.recommendations.evaluation import START
    from mysetlist.ml.recommendations.training import RecommenderModel, model_to_bytes

    t = time.perf_counter()
    u, a, w, genre = planted(users, artists, interactions, seed)
    x = sp.csr_matrix((w, (u, a)), shape=(users, artists), dtype=np.float32)
    tags = sp.csr_matrix((np.ones(artists, np.float32), (np.arange(artists), genre)),
                         shape=(artists, GENRES))  # fmt: skip
    print(f"data: {x.shape[0]} users x {x.shape[1]} artists, {x.nnz} interactions "
          f"({time.perf_counter() - t:.1f} s to generate)", flush=True)  # fmt: skip
    # The tuning's starting points; every component is fitted and blended (the served
    # artifact at its largest: a tuned blend uses a subset).
    params: dict[str, dict[str, float]] = {name: dict(START.get(name, {})) for name in COMPONENTS}
    timings: dict[str, list[float]] = {name: [] for name in (*COMPONENTS, "total", "artifact")}
    model = None
    for run in range(runs):
        components = {}
        start = time.perf_counter()
        for name in COMPONENTS:
            t = time.perf_counter()
            components[name] = make_component(name, params[name], seed).fit(x, tags)
            timings[name].append(time.perf_counter() - t)
        weights = np.full(len(COMPONENTS), 1.0 / len(COMPONENTS))
        hybrid = Hybrid(components, weights, weights)
        model = RecommenderModel(hybrid, [str(uuid.UUID(int=i + 1)) for i in range(users)],
                                 np.arange(1, artists + 1, dtype=np.int64))  # fmt: skip
        timings["total"].append(time.perf_counter() - start)
        t = time.perf_counter()
        blob = model_to_bytes(model)
        timings["artifact"].append(time.perf_counter() - t)
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in timings.items()),
              flush=True)  # fmt: skip
    return {"x": x, "genre": genre, "model": model, "blob": blob, "timings": timings}


def load_database(db_url: str, trained: dict[str, Any]) -> None:
    """Users, artists (with genres) and the interactions as follows; the model registered."""
    from mysetlist.ml.model_registry import register_model
    from mysetlist.ml.recommendations.training import MODEL_NAME

    x = trained["x"].tocoo()
    users, artists = x.shape
    t = time.perf_counter()
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        with cur.copy("COPY app.users (id, display_name) FROM STDIN") as copy:
            for i in range(users):
                copy.write_row((uuid.UUID(int=i + 1), f"fan {i}"))
        with cur.copy("COPY app.artists (id, name, genres) FROM STDIN") as copy:
            for i in range(artists):
                copy.write_row((i + 1, f"artist {i}", [f"genre {trained['genre'][i]}"]))
        buf = io.StringIO()
        for ui, ai in zip(x.row, x.col, strict=True):
            buf.write(f"{uuid.UUID(int=int(ui) + 1)}\t{int(ai) + 1}\n")
        with cur.copy("COPY app.follows (user_id, artist_id) FROM STDIN") as copy:
            copy.write(buf.getvalue())
        conn.execute("ANALYZE")

    async def register() -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as aconn:
            await register_model(aconn, MODEL_NAME, metrics={"ndcg@10": 0.0},
                                 primary_metric="ndcg@10", artifact=trained["blob"],
                                 artifact_format="npz")  # fmt: skip
            await aconn.commit()

    asyncio.run(register())
    print(f"database loaded in {time.perf_counter() - t:.0f} s", flush=True)


def _get(host: str, path: str, token: str, method: str = "GET", body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


def sequential(host: str, requests: list[bytes]) -> list[float]:
    async def run() -> list[float]:
        h, p = host.split(":")
        reader, writer = await asyncio.open_connection(h, int(p))
        lat = []
        for req in requests:
            t = time.perf_counter()
            status = await _send(reader, writer, req)
            lat.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"status {status}")
        writer.close()
        return lat

    return asyncio.run(run())


def open_loop(host: str, requests: list[bytes], rate: float, seconds: float) -> dict[str, Any]:
    """Request i is due at t0 + i/rate; latency from the due time (no coordinated omission)."""

    async def run() -> dict[str, Any]:
        h, p = host.split(":")
        pool: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(32):
            pool.put_nowait(await asyncio.open_connection(h, int(p)))
        lat: list[float] = []
        statuses: dict[int, int] = {}

        async def one(req: bytes, due: float) -> None:
            rw = await pool.get()
            status = await _send(rw[0], rw[1], req)
            lat.append(time.perf_counter() - due)
            statuses[status] = statuses.get(status, 0) + 1
            pool.put_nowait(rw)

        tasks = []
        t0 = time.perf_counter() + 0.05
        for i in range(int(rate * seconds)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(requests[i % len(requests)], due)))
        await asyncio.gather(*tasks)
        return {"lat": lat, "statuses": statuses}

    return asyncio.run(run())


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1e3:.1f} ms, p99 {pct(values, 0.99) * 1e3:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--artists", type=int, default=20_000)
    ap.add_argument("--interactions", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3, help="training runs (median reported)")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--cached-users", type=int, default=2000)
    ap.add_argument("--similar", type=int, default=300, help="similar-users requests")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-api", action="store_true", help="training time only")
    ap.add_argument(
        "--export-csv", type=Path, metavar="DIR",
        help="write the planted data as DIR/interactions.csv and DIR/tags.csv (for `mysetlist "
        "ml evaluate --interactions … --item-tags …`) and exit",
    )  # fmt: skip
    args = ap.parse_args()
    if args.export_csv is not None:
        export_csv(args.export_csv, args.users, args.artists, args.interactions, args.seed)
        return
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}",
          flush=True)  # fmt: skip
    trained = train(args.users, args.artists, args.interactions, args.runs, args.seed)
    for name, values in trained["timings"].items():
        print(f"  training {name:13s} median {statistics.median(values):6.2f} s  runs "
              + " · ".join(f"{v:.2f}" for v in values))  # fmt: skip
    print(f"  artifact {len(trained['blob']) / 1e6:.0f} MB")
    if args.no_api:
        return
    os.environ["JWT_SECRET"] = JWT_SECRET
    from mysetlist.core.auth import mint_token
    from mysetlist.core.config import load_settings

    with (
        tempfile.TemporaryDirectory() as tmp,
        servers(Path(tmp)) as (admin, redis_url),
        bench_database(admin) as db_url,
    ):
        load_database(db_url, trained)
        settings = load_settings(DATABASE_URL=db_url, REDIS_URL=redis_url,
                                 MYSETLIST_DATA_DIR=tmp, JWT_SECRET=JWT_SECRET)  # fmt: skip
        rng = np.random.default_rng(args.seed)
        picked = rng.choice(args.users, size=args.cached_users + 200, replace=False)
        every = [mint_token(settings, str(uuid.UUID(int=int(i) + 1))) for i in picked]
        warmup, tokens = every[:200], every[200:]
        with api_server(db_url, redis_url, 2, Path(tmp)) as (host, _proc):
            path = "/api/analytics/recommendations?type=artists&limit=10"
            # Both workers load the model on their first request: not measured.
            open_loop(host, [_get(host, path, tok) for tok in warmup], 100, 2)
            gets = [_get(host, path, tok) for tok in tokens]
            misses = sequential(host, gets)  # the first request per user: a cache miss
            print(f"(b) cache misses, sequential, {len(misses)} users: {ms(misses)}")
            warm = open_loop(host, gets, args.rate, args.seconds)
            print(f"(b) warm cache at {args.rate:.0f} req/s for {args.seconds:.0f} s: "
                  f"{ms(warm['lat'])}, statuses {warm['statuses']}")  # fmt: skip
            posts = [_get(host, "/api/analytics/recommendations", tok, "POST",
                          b'{"limit": 10}') for tok in tokens[: args.similar]]  # fmt: skip
            similar = sequential(host, posts)
            print(f"(c) similar users (cache misses), sequential, {len(similar)} users: "
                  f"{ms(similar)}")  # fmt: skip


if __name__ == "__main__":
    main()
