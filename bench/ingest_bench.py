"""Ingest benchmark: (a) raw binary COPY ceiling, (b) HTTP batches of 100 against
`mysetlist api --workers 2`, (c) single-event POSTs (closed-loop maximum, and p50/p99 at a
fixed offered load). One run, one PostgreSQL: the embedded one, or `DATABASE_URL` if set
(a fresh database is created on it and dropped at the end).

    python bench/ingest_bench.py                      # defaults below
    python bench/ingest_bench.py --events 300000 --rate 1000 --fixed-seconds 15

The load generator is a minimal HTTP/1.1 keep-alive client on uvloop in a few processes
(pre-built request bytes, no per-request library overhead), so the client costs as little
CPU as possible on a machine it shares with the server and the database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg

EVENT_TYPES = ["page_view", "artist_view", "show_view", "search", "vote", "follow"]
COLUMNS = ("message_id, user_id, anonymous_id, session_id, event_type, page_url, properties,"
           " source, created_at")  # fmt: skip


# -- servers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[tuple[str, str]]:
    from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey

    started: list[Any] = []
    admin = os.environ.get("DATABASE_URL")
    redis_url = os.environ.get("REDIS_URL")
    if not admin:
        pg = EmbeddedPostgres(workdir)
        admin = pg.start()
        started.append(pg)
    if not redis_url:
        vk = EmbeddedValkey(workdir)
        redis_url = vk.start()
        started.append(vk)
    try:
        yield admin, redis_url
    finally:
        for s in reversed(started):
            s.stop()


@contextlib.contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    from mysetlist.core.db import with_database
    from mysetlist.core.migrate import apply_migrations

    name = f"mysetlist_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    try:
        apply_migrations(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def api_server(
    db_url: str, redis_url: str, workers: int, workdir: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "MYSETLIST_DATA_DIR": str(workdir / "appdata"),
        "MYSETLIST_WRITE_KEYS": "bench-key",
        "MYSETLIST_RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "api", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b" 200 " in s.recv(1024):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mysetlist api did not start")
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish its startup
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- event generation ----------------------------------------------------------------------------


def make_event(i: int, prefix: str) -> dict[str, Any]:
    return {
        "event_type": EVENT_TYPES[i % len(EVENT_TYPES)],
        "anonymous_id": f"anon-{i % 5000}",
        "session_id": f"sess-{i % 20000}",
        "page_url": f"https://mysetlist.app/shows/{i % 700}",
        "event_data": {"show_id": i % 700, "song_id": i % 9000, "source": "bench"},
        "message_id": f"{prefix}-{i}",
    }


# -- (a) COPY ceiling --------------------------------------------------------------------------


def bench_copy(db_url: str, n: int) -> dict[str, float]:
    """Binary COPY of n events straight into analytics.user_events.

    `server_eps`: PostgreSQL alone (a pre-encoded binary stream); `client_eps`: including
    encoding the rows in Python with psycopg's binary COPY (`write_row`)."""
    now = datetime.now(UTC)
    rows = []
    for i in range(n):
        e = make_event(i, "copy")
        props = orjson.dumps(e["event_data"]).decode()
        rows.append((e["message_id"], None, e["anonymous_id"], e["session_id"], e["event_type"],
                     e["page_url"], props, "bench", now))  # fmt: skip
    types = ["text", "uuid", "text", "text", "text", "text", "jsonb", "text", "timestamptz"]
    with psycopg.connect(db_url) as conn:
        from psycopg.types.json import Jsonb

        def dumps(o: Any) -> str:
            return orjson.dumps(o).decode()

        wrapped = [(*r[:6], Jsonb(orjson.loads(r[6]), dumps=dumps), *r[7:]) for r in rows]
        started = time.perf_counter()
        with conn.cursor().copy(
            f"COPY analytics.user_events ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            for r in wrapped:
                copy.write_row(r)
        conn.commit()
        client_s = time.perf_counter() - started
        # the same rows as a binary stream, then a timed load of that stream alone
        buf = bytearray()
        with conn.cursor().copy(
            f"COPY (SELECT {COLUMNS} FROM analytics.user_events) TO STDOUT (FORMAT BINARY)"
        ) as out:
            for chunk in out:
                buf += chunk
        conn.execute("TRUNCATE analytics.user_events")
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.cursor().copy(
            f"COPY analytics.user_events ({COLUMNS}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            view = memoryview(bytes(buf))
            for off in range(0, len(view), 1 << 20):
                copy.write(view[off : off + (1 << 20)])
        conn.commit()
        server_s = time.perf_counter() - started
        count = conn.execute("SELECT count(*) FROM analytics.user_events").fetchone()
        assert count is not None
        assert count[0] == n, count
        conn.execute("TRUNCATE analytics.user_events, analytics.event_dedup")
        conn.commit()
        conn.execute("CHECKPOINT")
    return {"server_eps": n / server_s, "client_eps": n / client_s, "seconds": server_s}


# -- the HTTP load generator ---------------------------------------------------------------------


def request_bytes(host: str, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def _send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _closed_loop_worker(args: tuple[str, list[bytes], int, Any, Any]) -> dict[str, Any]:
    """Send pre-built requests over `conns` keep-alive connections, as fast as answered."""
    host, requests, conns, start, _ = args
    import uvloop

    async def run() -> dict[str, Any]:
        h, p = host.split(":")
        queue = list(reversed(requests))
        statuses: dict[int, int] = {}
        lat: list[float] = []

        async def conn_loop() -> None:
            reader, writer = await asyncio.open_connection(h, int(p))
            while queue:
                req = queue.pop()
                t = time.perf_counter()
                st = await _send(reader, writer, req)
                lat.append(time.perf_counter() - t)
                statuses[st] = statuses.get(st, 0) + 1
            writer.close()

        start.wait()
        t0 = time.perf_counter()
        c0 = sum(os.times()[:2])
        await asyncio.gather(*(conn_loop() for _ in range(conns)))
        cpu = sum(os.times()[:2]) - c0
        return {"seconds": time.perf_counter() - t0, "statuses": statuses, "lat": lat, "cpu": cpu}

    return uvloop.run(run())


def _timed_single_worker(args: tuple[str, str, int, float, Any, int]) -> dict[str, Any]:
    """Single-event POSTs for `seconds`, closed loop, each with a fresh message_id."""
    host, prefix, conns, seconds, start, offset = args
    import uvloop

    async def run() -> dict[str, Any]:
        h, p = host.split(":")
        statuses: dict[int, int] = {}
        lat: list[float] = []
        counter = [offset]

        async def conn_loop() -> None:
            reader, writer = await asyncio.open_connection(h, int(p))
            while time.perf_counter() < deadline:
                counter[0] += 1
                body = orjson.dumps(make_event(counter[0], prefix))
                t = time.perf_counter()
                st = await _send(reader, writer, request_bytes(host, "/api/analytics/events", body))
                lat.append(time.perf_counter() - t)
                statuses[st] = statuses.get(st, 0) + 1
            writer.close()

        start.wait()
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(conn_loop() for _ in range(conns)))
        return {"seconds": time.perf_counter() - t0, "statuses": statuses, "lat": lat}

    return uvloop.run(run())


def _open_loop(host: str, rate: float, seconds: float, conns: int) -> dict[str, Any]:
    """Offered load: request i is due at t0 + i/rate whatever the server does; latency is
    measured from the due time (no coordinated omission)."""
    import uvloop

    async def run() -> dict[str, Any]:
        h, p = host.split(":")
        pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        for _ in range(conns):
            pool.put_nowait(await asyncio.open_connection(h, int(p)))
        lat: list[float] = []
        statuses: dict[int, int] = {}
        tasks: list[asyncio.Task[None]] = []
        prefix = "open-" + uuid.uuid4().hex[:6]

        async def one(i: int, due: float) -> None:
            rw = await pool.get()
            body = orjson.dumps(make_event(i, prefix))
            st = await _send(rw[0], rw[1], request_bytes(host, "/api/analytics/events", body))
            lat.append(time.perf_counter() - due)
            statuses[st] = statuses.get(st, 0) + 1
            pool.put_nowait(rw)

        total = int(rate * seconds)
        t0 = time.perf_counter() + 0.05
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        return {"lat": lat, "statuses": statuses, "seconds": elapsed}

    return uvloop.run(run())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench_batches(host: str, n: int, batch: int, procs: int, conns: int) -> dict[str, Any]:
    per = n // batch // procs
    ctx = mp.get_context("fork")
    start = ctx.Manager().Event()
    jobs = []
    for p in range(procs):
        reqs = []
        for b in range(per):
            base = (p * per + b) * batch
            body = orjson.dumps({"events": [make_event(base + k, "b") for k in range(batch)]})
            reqs.append(request_bytes(host, "/api/analytics/events", body))
        jobs.append((host, reqs, conns, start, None))
    with ctx.Pool(procs) as pool:
        res = pool.map_async(_closed_loop_worker, jobs)
        time.sleep(0.5)
        start.set()
        results = res.get()
    seconds = max(r["seconds"] for r in results)
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    ok_events = statuses.get(202, 0) * batch
    lat = [x for r in results for x in r["lat"]]
    return {"eps": ok_events / seconds, "seconds": seconds, "statuses": statuses,
            "client_cpu": sum(r["cpu"] for r in results),
            "events": ok_events, "p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}  # fmt: skip


def bench_single_max(host: str, seconds: float, procs: int, conns: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    start = ctx.Manager().Event()
    jobs = [(host, f"s{p}", conns, seconds, start, p * 10_000_000) for p in range(procs)]
    with ctx.Pool(procs) as pool:
        res = pool.map_async(_timed_single_worker, jobs)
        time.sleep(0.3)
        start.set()
        results = res.get()
    statuses: dict[int, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    lat = [x for r in results for x in r["lat"]]
    secs = max(r["seconds"] for r in results)
    return {"rps": statuses.get(202, 0) / secs, "statuses": statuses,
            "p50": pct(lat, 0.5), "p99": pct(lat, 0.99)}  # fmt: skip


def bench_single_fixed(host: str, rate: float, seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        r = pool.apply(_open_loop, (host, rate, seconds, 128))
    lat = r["lat"]
    return {"offered": rate, "achieved": len(lat) / r["seconds"], "statuses": r["statuses"],
            "p50": pct(lat, 0.5), "p90": pct(lat, 0.9), "p99": pct(lat, 0.99),
            "max": max(lat) if lat else float("nan")}  # fmt: skip


class CpuMeter:
    """CPU seconds used by the API processes, by PostgreSQL and by the whole machine, between
    two snapshots.

    PostgreSQL is the embedded server's whole process tree (postmaster, backends, WAL
    writer, …) when the bench started it; on a server given by `DATABASE_URL`, which other
    work shares, only the backends connected to the bench database (`pg_scope` says which).
    Per process, so a process that starts between two snapshots counts in full."""

    def __init__(self, api_pid: int, pg_marker: str | None, db_url: str) -> None:
        self.api = psutil.Process(api_pid)
        self.pg: psutil.Process | None = None
        self.db_url = db_url
        if pg_marker:
            for proc in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                if proc.info["name"] == "postgres" and pg_marker in cmd and "-D" in cmd:
                    self.pg = proc
        self.pg_scope = "server" if self.pg else "bench database backends"

    @staticmethod
    def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
        used: dict[int, float] = {}
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                used[p.pid] = t.user + t.system
        return used

    def _pg_processes(self) -> list[psutil.Process]:
        if self.pg is not None:
            return [self.pg, *self.pg.children(recursive=True)]
        with psycopg.connect(self.db_url) as conn:
            pids = [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )]  # fmt: skip
        procs = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        return procs

    def snapshot(self) -> tuple[dict[int, float], dict[int, float], float]:
        t = psutil.cpu_times()
        busy = t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        api = self._cpu([self.api, *self.api.children(recursive=True)])
        return api, self._cpu(self._pg_processes()), busy

    @staticmethod
    def used(
        before: tuple[dict[int, float], dict[int, float], float],
        after: tuple[dict[int, float], dict[int, float], float],
    ) -> tuple[float, float, float]:
        """(API, PostgreSQL, whole machine) CPU seconds between two snapshots."""

        def delta(a: dict[int, float], b: dict[int, float]) -> float:
            return sum(cpu - a.get(pid, 0.0) for pid, cpu in b.items())

        return delta(before[0], after[0]), delta(before[1], after[1]), after[2] - before[2]


def count_rows(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM analytics.user_events").fetchone()
        return int(row[0]) if row else 0


def profile(pid: int, seconds: float, out: Path) -> str | None:
    """py-spy of one API worker while load runs (if py-spy is installed)."""
    if shutil.which("py-spy") is None:
        return None
    subprocess.run(
        ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--format", "raw", "--output", str(out), "--nonblocking", "--rate", "200"],
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return str(out) if out.exists() else None


def summarize_profile(path: str, top: int = 22) -> list[tuple[str, float, float]]:
    """(function, self share, inclusive share) from py-spy's raw (collapsed) output,
    sorted by self time: where one API worker's CPU actually goes."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    n = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        c = int(count)
        n += c
        names = []
        for frame in stack.split(";"):
            func, _, where = frame.partition(" (")
            names.append(f"{func} ({where.split(':')[0].split('/')[-1]})")
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + c
        own[names[-1]] = own.get(names[-1], 0) + c
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [(k, v / n, inclusive[k] / n) for k, v in ranked]


def print_profile(label: str, path: str) -> None:
    print(f"\n# profile of one API worker during {label}: self / inclusive share of samples")
    for name, self_share, incl in summarize_profile(path):
        print(f"  {self_share:6.1%} {incl:6.1%}  {name}")
    totals: dict[str, int] = {}
    n = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n += int(count)
        for key, needle in PROFILE_BUCKETS:
            if needle in stack:
                totals[key] = totals.get(key, 0) + int(count)
    print("  inclusive, selected parts:")
    for key, _ in PROFILE_BUCKETS:
        print(f"  {totals.get(key, 0) / max(n, 1):6.1%}  {key}")


PROFILE_BUCKETS = [
    ("route handler (parse, validate, enqueue, await commit)", "track_events ("),
    ("  JSON parse (orjson)", "parse_json ("),
    ("  validation + row building (pydantic)", "own_events ("),
    ("  one-pass decode, validation + rows (msgspec fast path)", "own_events_fast ("),
    ("group-commit transaction, client side (COPY, INSERT, COMMIT)", "GroupCommitWriter._commit ("),
    ("live metrics (aggregate + Redis pipeline)", "LiveMetricsRecorder.flush ("),
    ("  aggregate in memory", "_Aggregate.add ("),
    (
        "request middleware (id, metrics) and everything inside it",
        "RequestContextMiddleware.__call__ (",
    ),
    ("uvicorn httptools protocol (HTTP parse/serialise)", "httptools_impl.py"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events for (a) and (b)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    ap.add_argument("--client-procs", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16, help="connections per client process")
    ap.add_argument("--single-seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=1000, help="offered load for (c), req/s")
    ap.add_argument("--fixed-seconds", type=float, default=15)
    ap.add_argument("--profile", action="store_true", help="py-spy an API worker during (b), (c)")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    print(f"# ingest bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
          f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {platform.python_version()}", flush=True)  # fmt: skip
    try:
        with servers(workdir) as (admin, redis_url), bench_database(admin) as db_url:
            with psycopg.connect(db_url) as c:
                print(f"# PostgreSQL {c.info.server_version / 10000:.1f}", flush=True)
            a = bench_copy(db_url, args.events)
            print(f"(a) binary COPY, server only : {a['server_eps']:>10,.0f} events/s", flush=True)
            print(f"    binary COPY incl. encoding: {a['client_eps']:>10,.0f} events/s", flush=True)
            with api_server(db_url, redis_url, args.workers, workdir) as (host, proc):
                workers = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)
                           if "resource_tracker" not in " ".join(c.cmdline())]  # fmt: skip
                print(f"# API processes: {proc.pid} -> workers {workers}", flush=True)
                prof = None
                if args.profile and workers:
                    import threading

                    prof_out = workdir / "profile_b.txt"
                    th = threading.Thread(
                        target=profile, args=(workers[0], 8, prof_out), daemon=True
                    )
                    th.start()
                meter = CpuMeter(
                    proc.pid, None if os.environ.get("DATABASE_URL") else str(workdir), db_url
                )
                cpu0 = meter.snapshot()
                b = bench_batches(host, args.events, args.batch, args.client_procs, args.conns)
                cpu1 = meter.snapshot()
                if args.profile and workers:
                    th.join()
                    prof = prof_out if prof_out.exists() else None
                stored = count_rows(db_url)
                print(f"(b) HTTP batches of {args.batch}     : {b['eps']:>10,.0f} events/s "
                      f"(statuses {b['statuses']}, request p50 {b['p50'] * 1000:.1f} ms, "
                      f"p99 {b['p99'] * 1000:.1f} ms, rows {stored:,})", flush=True)  # fmt: skip
                api_s, pg_s, all_s = CpuMeter.used(cpu0, cpu1)
                per = 1e6 / max(b["events"], 1)
                print(f"    CPU during (b), per event : API {api_s * per:.1f} us, PostgreSQL "
                      f"{pg_s * per:.1f} us, load generator {b['client_cpu'] * per:.1f} us, "
                      f"whole machine {all_s * per:.1f} us ({all_s / b['seconds']:.2f} of "
                      f"{os.cpu_count()} CPUs busy; PostgreSQL: {meter.pg_scope})",
                      flush=True)  # fmt: skip
                print(
                    f"    ratio (b)/(a)             : {b['eps'] / a['server_eps']:.1%} "
                    f"(of COPY incl. encoding: {b['eps'] / a['client_eps']:.1%})",
                    flush=True,
                )
                cmax = bench_single_max(host, args.single_seconds, args.client_procs,
                                        args.conns * 2)  # fmt: skip
                print(f"(c) single-event POSTs, max  : {cmax['rps']:>10,.0f} requests/s "
                      f"(statuses {cmax['statuses']}, p50 {cmax['p50'] * 1000:.1f} ms, "
                      f"p99 {cmax['p99'] * 1000:.1f} ms)", flush=True)  # fmt: skip
                prof_c = None
                if args.profile and workers:
                    prof_c_out = workdir / "profile_c.txt"
                    th = threading.Thread(
                        target=profile, args=(workers[0], 8, prof_c_out), daemon=True
                    )
                    th.start()
                fixed = bench_single_fixed(host, args.rate, args.fixed_seconds)
                if args.profile and workers:
                    th.join()
                    prof_c = prof_c_out if prof_c_out.exists() else None
                print(f"(c) at {fixed['offered']:,.0f} req/s offered   : achieved "
                      f"{fixed['achieved']:,.0f} req/s, p50 {fixed['p50'] * 1000:.1f} ms, "
                      f"p90 {fixed['p90'] * 1000:.1f} ms, p99 {fixed['p99'] * 1000:.1f} ms, "
                      f"max {fixed['max'] * 1000:.1f} ms (statuses {fixed['statuses']})",
                      flush=True)  # fmt: skip
                summary = {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "events": args.events, "batch": args.batch, "workers": args.workers,
                    "copy_eps": round(a["server_eps"]),
                    "copy_client_eps": round(a["client_eps"]),
                    "http_eps": round(b["eps"]),
                    "ratio": round(b["eps"] / a["server_eps"], 3),
                    "http_errors": sum(v for k, v in b["statuses"].items() if k != 202),
                    "api_cpu_us_per_event": round(api_s * per, 1),
                    "pg_cpu_us_per_event": round(pg_s * per, 1),
                    "pg_cpu_scope": meter.pg_scope,
                    "client_cpu_us_per_event": round(b["client_cpu"] * per, 1),
                    "machine_cpu_us_per_event": round(all_s * per, 1),
                    "single_rps": round(cmax["rps"]),
                    "single_p99_ms": round(cmax["p99"] * 1000, 1),
                    # the goal is named for 1,000 req/s offered; another --rate
                    # reports under fixed_* only, so the named figure never means another load
                    "p99_ms_at_1000": (round(fixed["p99"] * 1000, 1)
                                       if args.rate == 1000 else None),
                    "fixed_offered_rps": args.rate,
                    "fixed_achieved_rps": round(fixed["achieved"]),
                    "fixed_p50_ms": round(fixed["p50"] * 1000, 1),
                    "fixed_p99_ms": round(fixed["p99"] * 1000, 1),
                    "fixed_errors": sum(v for k, v in fixed["statuses"].items() if k != 202),
                }  # fmt: skip
                for label, path in (("(b)", prof), ("(c) fixed load", prof_c)):
                    if path:
                        print_profile(label, str(path))
                        keep = Path(tempfile.gettempdir()) / f"ingest-{Path(path).name}"
                        shutil.copy(path, keep)
                        print(f"  (raw py-spy stacks kept in {keep})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _ = statistics  # (kept for ad-hoc analysis)
    # Last line: the figures as one JSON object (bench/quick.py and scripts read it).
    print(orjson.dumps(summary).decode(), flush=True)


if __name__ == "__main__":
    main()
