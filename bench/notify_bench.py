"""Notification benchmark: 10,000 notifications to 10,000 users through the whole pipeline
(POST /api/notifications/send on `mysetlist api`, the transaction with its drain jobs,
`mysetlist worker` processes draining chunks, SMTP) into a local SMTP sink (aiosmtpd).

Reports deliveries/s (first request to last message in the sink) and the time from each
request to each of its messages reaching the sink (p50, p99). Goal (issue 10): >= 1,000/s.

    python bench/notify_bench.py                       # 10,000 notifications, rate limits off
    python bench/notify_bench.py --workers 2 --concurrency 8   # two worker processes
    python bench/notify_bench.py --rate-limit 1000 --notifications 1500
        # rateLimitPerMinute=1000: the most messages the sink saw in any 60 s window

PostgreSQL and Redis: `DATABASE_URL` and `REDIS_URL` (a database `mysetlist_notify_bench`
is created on that server and dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx
import orjson
import psutil
import psycopg
from aiosmtpd.controller import Controller

from mysetlist.core.auth import mint_token
from mysetlist.core.config import load_settings
from mysetlist.core.db import with_database
from mysetlist.core.field_encryption import FieldCipher
from mysetlist.core.migrate import apply_migrations

BENCH_DB = "mysetlist_notify_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sink:
    """Counts messages and when each recipient's arrived (no parsing beyond the To line)."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.times: list[float] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.time()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.setdefault(rcpt, now)
            self.times.append(now)
        return "250 OK"


def create_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    url = with_database(admin_url, BENCH_DB)
    apply_migrations(url)
    return url


def create_users(url: str, cipher: FieldCipher, n: int) -> list[tuple[str, str]]:
    users = [(str(uuid.uuid4()), f"bench{i}@example.test") for i in range(n)]
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(
            "COPY app.users (id, display_name, email_encrypted, email_hash, email_verified_at)"
            " FROM STDIN"
        ) as copy,
    ):
        for user_id, address in users:
            copy.write_row((user_id, "Fan", cipher.encrypt(address, context=b"users.email"),
                            cipher.lookup_hash(address), "2026-01-01T00:00:00Z"))  # fmt: skip
    return users


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "mysetlist", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


async def wait_for_api(base: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base) as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("mysetlist api did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tree_cpu(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) a process and its children used so far."""
    total = 0.0
    try:
        root = psutil.Process(proc.pid)
        for p in [root, *root.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
    except psutil.Error:
        pass
    return total


def settled_cpu(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    """The process's CPU once its startup is over (less than 20 ms of CPU in 0.5 s), so the
    CPU per delivery counts the work, not the imports."""
    deadline = time.monotonic() + timeout
    last = tree_cpu(proc)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_cpu(proc)
        if now - last < 0.02:
            return now
        last = now
    return last


def max_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    best = 0
    for i, t in enumerate(ordered):
        best = max(best, bisect.bisect_right(ordered, t + window - 1e-9) - i)
    return best


async def run(args: argparse.Namespace) -> dict[str, Any]:
    admin_url = os.environ["DATABASE_URL"]
    redis_url = os.environ["REDIS_URL"]
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    jwt_secret = secrets.token_urlsafe(32)
    url = create_database(admin_url)
    users = create_users(url, FieldCipher(base64.urlsafe_b64decode(key)), args.notifications)
    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    data_dir = tempfile.mkdtemp(prefix="notify-bench-")
    env = {
        **os.environ, "DATABASE_URL": url, "REDIS_URL": redis_url, "JWT_SECRET": jwt_secret,
        "MYSETLIST_ENCRYPTION_KEY": key, "MYSETLIST_DATA_DIR": data_dir,
        "EMAIL_PROVIDERS": "smtp", "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "SMTP_CONNECTIONS": str(args.smtp_connections),
        "NOTIFY_RATE_LIMIT_PER_MINUTE": str(args.rate_limit),
        "NOTIFY_BATCH_SIZE": str(args.batch_size), "LOG_LEVEL": "WARNING",
        "MYSETLIST_REDIS_KEY_PREFIX": f"notify-bench-{uuid.uuid4().hex[:8]}",
    }  # fmt: skip
    api_port = free_port()
    processes = [start(["api", "--port", str(api_port)], env)]
    processes += [start(["worker", "--concurrency", str(args.concurrency)], env)
                  for _ in range(args.workers)]  # fmt: skip
    base = f"http://127.0.0.1:{api_port}"
    settings = load_settings(JWT_SECRET=jwt_secret, MYSETLIST_DATA_DIR=data_dir)
    token = mint_token(settings, str(uuid.uuid4()), role="service_role")
    sent_at: dict[str, float] = {}
    try:
        await wait_for_api(base)
        # CPU per notification is the figure a shared machine cannot disturb much.
        api_cpu0 = settled_cpu(processes[0])
        worker_cpu0 = sum(settled_cpu(p) for p in processes[1:])
        started = time.time()
        async with httpx.AsyncClient(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            chunks = [users[i:i + args.per_request]
                      for i in range(0, len(users), args.per_request)]  # fmt: skip
            queue: asyncio.Queue[list[tuple[str, str]]] = asyncio.Queue()
            for chunk in chunks:
                queue.put_nowait(chunk)

            async def client() -> None:
                while not queue.empty():
                    chunk = queue.get_nowait()
                    t = time.time()
                    body = {
                        "userIds": [u for u, _ in chunk],
                        "type": "account_notice",
                        "title": "Benchmark",
                        "message": "hello",
                        "channels": ["email"],
                    }
                    r = await c.post("/api/notifications/send", json=body)
                    r.raise_for_status()
                    for _, address in chunk:
                        sent_at[address] = t

            await asyncio.gather(*(client() for _ in range(args.clients)))
            accepted_s = time.time() - started
            api_cpu = tree_cpu(processes[0]) - api_cpu0
        deadline = time.monotonic() + args.timeout
        while len(sink.arrivals) < len(users) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)  # the sink fills from its own thread
        worker_cpu = sum(tree_cpu(p) for p in processes[1:]) - worker_cpu0
    finally:
        for proc in processes:
            proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        controller.stop()
        with psycopg.connect(url) as conn:
            retried = conn.execute(
                "SELECT count(*) FILTER (WHERE attempts > 1), array_agg(DISTINCT last_error)"
                " FROM notify.notification_delivery"
            ).fetchone()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    delivered = len(sink.arrivals)
    last = max(sink.arrivals.values()) if sink.arrivals else started
    latencies = [sink.arrivals[a] - sent_at[a] for a in sink.arrivals if a in sent_at]
    return {
        "notifications": len(users), "delivered": delivered,
        "messages_in_sink": len(sink.times),
        "requests_accepted_s": round(accepted_s, 2),
        "total_s": round(last - started, 2),
        "deliveries_per_s": round(delivered / max(last - started, 1e-9), 1),
        "p50_request_to_sink_s": round(percentile(latencies, 0.50), 3) if latencies else None,
        "p99_request_to_sink_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "api_cpu_per_notification_us": round(api_cpu / len(users) * 1e6, 1),
        "worker_cpu_per_delivery_us": round(worker_cpu / max(delivered, 1) * 1e6, 1),
        "max_in_any_60s": max_in_window(sink.times, 60.0),
        "deliveries_retried": retried[0] if retried else None,
        "errors": [e for e in (retried[1] if retried else []) or [] if e][:3],
        "rate_limit_per_minute": args.rate_limit,
        "workers": args.workers, "concurrency": args.concurrency,
        "batch_size": args.batch_size, "smtp_connections": args.smtp_connections,
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
                   f"{platform.platform()}",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=10_000)
    parser.add_argument("--per-request", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--smtp-connections", type=int, default=8)
    parser.add_argument("--rate-limit", type=int, default=0, help="rateLimitPerMinute; 0 = off")
    parser.add_argument("--timeout", type=float, default=600)
    result = asyncio.run(run(parser.parse_args()))
    for name, value in result.items():
        print(f"{name:>24}: {value}")
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
