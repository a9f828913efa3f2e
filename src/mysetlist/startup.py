"""How every `mysetlist` command starts: settings, servers, schema; one way for all.

`load_all_settings` loads the core settings and every capability's own settings class now
(the ones `capabilities.py` finds), so a bad variable stops any command with one line
naming it (exit 2), not a 500 or a worker's traceback later. `started` adds the servers
(embedded ones for unset URLs) with the schema migrated, and stops what it started on the
way out. Capability commands use it too (lazily imported: this module knows the
capabilities, like api, jobs and cli do).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from mysetlist.core.config import ConfigError, Settings, load_settings
from mysetlist.core.embedded import Endpoints, resolve_endpoints


def _check_capability_settings(settings: Settings) -> None:
    """Every capability's settings class (`capabilities.py` finds them), read now."""
    from mysetlist.capabilities import settings_classes

    for cls in settings_classes():
        settings.of(cls)


def load_all_settings() -> Settings:
    """Core and capability settings, or exit 2 with one line naming the bad variable."""
    try:
        settings = load_settings()
        _check_capability_settings(settings)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)  # one unwrapped line, whatever the terminal width
        raise typer.Exit(2) from None
    return settings


def open_endpoints(settings: Settings, *, quiet: bool = False) -> Endpoints:
    """The database and Redis (embedded when their URL is unset), schema migrated.
    The caller stops the result (`Endpoints.stop`)."""
    from mysetlist.core.migrate import apply_migrations

    # SIGTERM should run atexit hooks (they release embedded servers) like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    endpoints = resolve_endpoints(settings)
    try:
        # Direct: the migrator's session lock and DDL need a session, not a pooler's.
        applied = apply_migrations(endpoints.direct_url)
    except BaseException:
        endpoints.stop()
        raise
    if applied and not quiet:
        typer.echo(f"applied {len(applied)} migration(s)", err=True)
    return endpoints


@contextmanager
def started(*, quiet: bool = False) -> Iterator[tuple[Settings, Endpoints]]:
    """Settings and servers for one command; releases the servers when it ends."""
    settings = load_all_settings()
    endpoints = open_endpoints(settings, quiet=quiet)
    try:
        yield settings, endpoints
    finally:
        endpoints.stop()


def stdout_console() -> Console:
    """For tables on stdout: whole when piped or redirected (Rich would squeeze them to 80
    columns and cut dates to `2026-1…`); a terminal gets its own width."""
    return Console() if sys.stdout.isatty() else Console(width=1000)
