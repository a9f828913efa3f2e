"""Logs: structured JSON, one object a line, carrying the request id when there is one; or,
for a person at a terminal, short human-readable lines (Rich) at warning level.

`configure_logging` picks the format: `json` and `console` as asked, `auto` (the default)
the console format when the log stream is a terminal and JSON otherwise, so collectors
and pipes keep getting JSON. The level, when not given, follows the format: warning at a
terminal (a running demo's worker logs every job at info, dozens of lines a second, over
the banner a person needs to read), info for JSON.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

LogFormat = Literal["auto", "json", "console"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _fields(record: logging.LogRecord) -> dict[str, object]:
    """What a record carries beyond its message: the request id and `extra={"fields": …}`."""
    out: dict[str, object] = {}
    rid = request_id_var.get()
    if rid:
        out["request_id"] = rid
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        out.update(extra)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """`logger: message key=value …` for Rich's handler, which adds time and level."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        if fields:
            text = f"{text}  {fields}"
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


def is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    if fmt == "auto":
        return "console" if is_terminal(stream) else "json"
    return fmt


def configure_logging(
    level: str | None = None, fmt: LogFormat = "auto", *, stream: TextIO | None = None
) -> tuple[str, str]:
    """Log to `stream` (stderr) in `fmt` at `level` (None: by format, see the module doc).
    Answers the (format, level) chosen."""
    stream = stream if stream is not None else sys.stderr
    chosen = resolve_format(fmt, stream)
    level = (level or ("WARNING" if chosen == "console" else "INFO")).upper()
    handler: logging.Handler
    if chosen == "console":
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(file=stream), show_path=False, log_time_format="[%X]")
        handler.setFormatter(ConsoleFormatter())
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    # httpx logs every request it makes at info (a demo's simulated fans: several a
    # second); our own code logs the calls that matter. Debug shows them again.
    logging.getLogger("httpx").setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
    return chosen, level
