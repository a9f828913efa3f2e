"""Log format and level: readable lines at warning level on a terminal (a real pty), JSON at
info level into a pipe; --log-level and LOG_LEVEL override the level, LOG_FORMAT the format."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
import typer

from mysetlist.cli import _configure_logs
from mysetlist.core.config import load_settings

PROGRAM = """
import logging
from mysetlist.core.json_logging import configure_logging
configure_logging(None, {fmt!r})
log = logging.getLogger("procrastinate.worker")
log.info("Job 42 started")
log.warning("email provider %s is slow", "outbox", extra={{"fields": {{"job_id": 42}}}})
"""


def _run(fmt: str, *, tty: bool) -> str:
    """The program's stderr, from a pseudo-terminal or from a pipe."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    code = PROGRAM.format(fmt=fmt)
    if not tty:
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        return done.stderr
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=follower,
                                 stdout=subprocess.DEVNULL)  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=60) == 0
    finally:
        os.close(leader)
    # Rich colours the terminal's lines (numbers, the level): compare the text.
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())


def test_a_terminal_gets_readable_lines_at_warning_level() -> None:
    out = _run("auto", tty=True)
    assert "Job 42 started" not in out  # info is below a terminal's default level
    assert "procrastinate.worker: email provider outbox is slow" in out
    assert "job_id=42" in out
    assert "WARNING" in out
    assert '"level"' not in out  # not JSON


def test_a_pipe_gets_json_at_info_level() -> None:
    lines = [json.loads(line) for line in _run("auto", tty=False).splitlines()]
    assert [(e["level"], e["msg"]) for e in lines] == [
        ("info", "Job 42 started"), ("warning", "email provider outbox is slow"),
    ]  # fmt: skip
    assert lines[1]["job_id"] == 42
    assert lines[1]["logger"] == "procrastinate.worker"


def test_the_format_can_be_forced_either_way() -> None:
    assert json.loads(_run("json", tty=True).splitlines()[0])["msg"] == "Job 42 started"
    forced = _run("console", tty=False)
    assert "email provider outbox is slow" in forced
    assert "Job 42 started" not in forced
    assert '"level"' not in forced


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_log_level_option_then_environment_then_the_formats_default() -> None:
    root = logging.getLogger()
    unset = load_settings()
    assert "log_level" not in unset.model_fields_set
    _configure_logs(unset, None, "json")
    assert root.level == logging.INFO  # JSON's default
    _configure_logs(unset, None, "console")
    assert root.level == logging.WARNING  # a person's default
    from_env = load_settings(LOG_LEVEL="error")
    _configure_logs(from_env, None, "console")
    assert root.level == logging.ERROR
    _configure_logs(from_env, "debug", "console")
    assert root.level == logging.DEBUG  # the option wins
    for level, fmt in (("loud", "json"), (None, "xml")):
        with pytest.raises(typer.Exit) as exc:
            _configure_logs(unset, level, fmt)
        assert exc.value.exit_code == 2
