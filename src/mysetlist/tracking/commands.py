"""`mysetlist keys create|list|revoke`: write keys for Segment/PostHog sources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from mysetlist.tracking import write_keys

NAME = "keys"
commands = typer.Typer(no_args_is_help=True, help="Write keys for Segment/PostHog sources.")
console = Console(stderr=True)


@contextmanager
def _connection() -> Iterator[psycopg.Connection[Any]]:
    from mysetlist.core.config import ConfigError, load_settings
    from mysetlist.core.embedded import resolve_endpoints
    from mysetlist.core.migrate import apply_migrations

    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    endpoints = resolve_endpoints(settings)
    try:
        apply_migrations(endpoints.database_url)
        with psycopg.connect(endpoints.database_url) as conn:
            yield conn
    finally:
        endpoints.stop()


@commands.command()
def create(name: Annotated[str, typer.Option(help="what the key is for")] = "default") -> None:
    """Create a key; the key itself is printed once (last line), only its hash is kept."""
    with _connection() as conn:
        key_id, key = write_keys.create_key(conn, name)
    console.print(f"created write key {key_id} ({name}); store it now, it is not shown again")
    print(key, flush=True)


@commands.command("list")
def list_() -> None:
    """List keys (prefix, name, created, revoked)."""
    with _connection() as conn:
        rows = write_keys.list_keys(conn)
    table = Table("id", "name", "prefix", "created", "revoked")
    for key_id, name, prefix, created, revoked in rows:
        table.add_row(str(key_id), name, prefix + "…", f"{created:%Y-%m-%d %H:%M}",
                      f"{revoked:%Y-%m-%d %H:%M}" if revoked else "")  # fmt: skip
    Console().print(table)


@commands.command()
def revoke(key: Annotated[str, typer.Argument(help="the key's id, prefix or the key")]) -> None:
    """Revoke a key (API processes stop accepting it within the key cache time)."""
    with _connection() as conn:
        n = write_keys.revoke_key(conn, key)
    if n == 0:
        console.print(f"[red]no active key matches {key!r}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {n} key(s)")
