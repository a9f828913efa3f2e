"""Embedded servers: shared by processes on one data dir, stopped by the last one, and not
kept alive by the dead PID of a crashed holder (the watchdog stops orphans and restarts a
dead Valkey); a start after `kill -9` of everything works the first time; Valkey wants its
password. `mysetlist serve` stops them on Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey
from tests.conditions import first_answer, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside pytest's tmp root: as root, embedded PostgreSQL runs as another
    user who must traverse it, and every pytest session resets that root to 0700."""
    path = Path(tempfile.mkdtemp(prefix="mysetlist-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# Holds the servers named in argv[2:] ("pg", "valkey") on data dir argv[1]; prints their
# URLs, then (pg) adds a row to a table, and waits for stdin to close.
HOLD_SERVERS = """
import sys
from pathlib import Path
import psycopg
from mysetlist.core.embedded import EmbeddedPostgres, EmbeddedValkey
data_dir = Path(sys.argv[1])
if "pg" in sys.argv[2:]:
    url = EmbeddedPostgres(data_dir).start()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survived (n int)")
        conn.execute("INSERT INTO survived SELECT generate_series(1, 50000)")
    print(url, flush=True)
if "valkey" in sys.argv[2:]:
    print(EmbeddedValkey(data_dir).start(), flush=True)
sys.stdin.read()
"""

HOLD_VALKEY = """
import sys
from pathlib import Path
from mysetlist.core.embedded import EmbeddedValkey
v = EmbeddedValkey(Path(sys.argv[1]))
print(v.start(), flush=True)
sys.stdin.read()
"""


def _port_open(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_valkey_is_shared_and_the_last_holder_stops_it(data_dir: Path) -> None:
    mine = EmbeddedValkey(data_dir)
    url = mine.start()
    other = subprocess.Popen(
        [sys.executable, "-c", HOLD_VALKEY, str(data_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert other.stdout is not None
    assert other.stdout.readline().strip() == url  # attached, not a second server
    redis.Redis.from_url(url).set("shared", "yes")
    mine.stop()
    assert redis.Redis.from_url(url).get("shared") == b"yes"  # still held by the other
    assert other.stdin is not None
    other.stdin.close()
    other.wait(timeout=20)
    wait_until(lambda: not _port_open(url), "the last holder to stop the server", within=10)


def test_postgres_prunes_dead_pids_and_stops(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    pids_file = pg.pgdata / ".handle_pids.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pids = json.loads(pids_file.read_text())
    pids_file.write_text(json.dumps([*pids, dead.pid]))
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    pg.stop()  # the last live holder: the crashed holder's PID must not block the stop
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []
    again = EmbeddedPostgres(data_dir)
    assert again.start() == url  # a second start in the same process re-registers
    assert json.loads(pids_file.read_text()) == [os.getpid()]
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    again.stop()
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []


def test_serve_on_embedded_servers_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")} | {
        "MYSETLIST_DATA_DIR": str(data_dir)
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "mysetlist", "serve", "--port", str(port), "--print-token"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready = first_answer(f"http://127.0.0.1:{port}/readyz", proc)
        assert ready.status_code == 200
        state = json.loads((data_dir / "valkey" / "server.json").read_text())
        postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("export TOKEN=")  # asked for (--print-token): the README's curl
    assert last.count(".") == 2  # the admin token, a JWT
    _gone, alive = psutil.wait_procs(
        [psutil.Process(p) for p in (postmaster, state["pid"]) if psutil.pid_exists(p)],
        timeout=15,
    )
    assert alive == []


def test_postgres_is_shared_with_another_process_on_the_same_data_dir(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "mysetlist", "migrate"],
        env=env | {"MYSETLIST_DATA_DIR": str(data_dir)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The other process attached to our server (it migrated our database) and, leaving,
    # did not stop it: we still hold it.
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('analytics.user_events')").fetchone()
    assert row is not None
    assert row[0] is not None
    assert psutil.pid_exists(postmaster)
    pg.stop()
    assert psutil.wait_procs([psutil.Process(postmaster)], timeout=15)[1] == []


def _hold(data_dir: Path, *servers: str) -> tuple[subprocess.Popen[str], list[str]]:
    """A process holding `servers` on `data_dir`, and the URLs it printed."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SERVERS, str(data_dir), *servers],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None
    urls = [holder.stdout.readline().strip() for _ in servers]
    if not all(urls):
        holder.kill()
        _, err = holder.communicate()
        pytest.fail(f"holder did not start: {err}")
    return holder, urls


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _postmaster(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def _valkey_pid(data_dir: Path) -> int:
    state = EmbeddedValkey(data_dir).read_state()
    assert state is not None
    return state["pid"]


def _watchdogs(data_dir: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and "mysetlist.core.embedded_watchdog" in p.info["cmdline"]
        and str(data_dir) in p.info["cmdline"]
    ]  # fmt: skip


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_start_after_kill_9_of_everything_succeeds_the_first_time(data_dir: Path) -> None:
    holder, (pg_url, _) = _hold(data_dir, "pg", "valkey")
    victims = [holder.pid, _postmaster(data_dir), _valkey_pid(data_dir)]
    victims += [w.pid for w in _watchdogs(data_dir)]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    holder.wait()
    # At once, while the dead postmaster's backends may still be exiting and its lock files
    # name a PID that may not be reaped yet; PostgreSQL must replay its log.
    again, (url_again, redis_again) = _hold(data_dir, "pg", "valkey")
    try:
        assert url_again == pg_url
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SELECT count(*) FROM survived").fetchone()
        assert row == (100_000,)  # both holders' committed rows, none lost
        assert redis.Redis.from_url(redis_again).ping()
    finally:
        _release(again)
    assert again.stderr is not None
    assert "did not shut down cleanly" in again.stderr.read()  # it said what it waited for


def test_orphaned_servers_stop_when_their_only_holder_is_killed(data_dir: Path) -> None:
    holder, _ = _hold(data_dir, "pg", "valkey")
    servers = [_postmaster(data_dir), _valkey_pid(data_dir)]
    holder.kill()  # no atexit hooks run
    holder.wait()
    wait_until(lambda: all(_gone(pid) for pid in servers), "the orphans to be stopped", within=20)
    wait_until(lambda: not _watchdogs(data_dir), "the watchdog to exit", within=20)


def test_servers_outlive_a_killed_holder_while_another_holds_them(data_dir: Path) -> None:
    first, (pg_url, redis_url) = _hold(data_dir, "pg", "valkey")
    second, _ = _hold(data_dir, "pg", "valkey")
    postmaster = _postmaster(data_dir)
    first.kill()
    first.wait()
    holders = data_dir / "valkey" / "holders.json"
    # The watchdog has looked at the lists (and dropped the dead PID) ...
    wait_until(
        lambda: first.pid not in json.loads(holders.read_text()),
        "the dead holder to be dropped",
        within=20,
    )
    # ... and left the servers to the live holder.
    assert psutil.pid_exists(postmaster)
    assert redis.Redis.from_url(redis_url).ping()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    # A Valkey that dies while held is restarted on the same port, with the same password.
    old_valkey = _valkey_pid(data_dir)
    os.kill(old_valkey, signal.SIGKILL)

    def restarted() -> bool:
        try:
            return _valkey_pid(data_dir) != old_valkey and bool(
                redis.Redis.from_url(redis_url).ping()
            )
        except redis.RedisError:
            return False

    wait_until(restarted, "the dead Valkey to be restarted", within=20)
    new_valkey = _valkey_pid(data_dir)
    _release(second)  # the last holder leaves normally and stops both
    wait_until(lambda: _gone(postmaster) and _gone(new_valkey), "both servers to stop", within=20)


def test_valkey_refuses_clients_without_its_password(data_dir: Path) -> None:
    valkey = EmbeddedValkey(data_dir)
    url = valkey.start()
    try:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        anonymous = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        with pytest.raises(redis.AuthenticationError):
            anonymous.flushall()
        assert redis.Redis.from_url(url).ping()
        # Only we can read the password, and it is not on the command line (`ps` shows that).
        assert (data_dir / "valkey").stat().st_mode & 0o777 == 0o700
        assert (data_dir / "valkey" / "password").stat().st_mode & 0o777 == 0o600
        password = (data_dir / "valkey" / "password").read_text().strip()
        assert password not in " ".join(psutil.Process(_valkey_pid(data_dir)).cmdline())
    finally:
        valkey.stop()
