"""`mysetlist keys create|list|revoke`: write keys for Segment/PostHog sources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from mysetlist.core.db import connect_sync
from mysetlist.tracking import write_keys
from mysetlist.tracking.identity_rule import KeyTrust

NAME = "keys"
commands = typer.Typer(no_args_is_help=True, help="Write keys for Segment/PostHog sources.")
console = Console(stderr=True)


@contextmanager
def _connection() -> Iterator[psycopg.Connection[Any]]:
    from mysetlist.startup import started

    with (
        started(quiet=True) as (_, endpoints),
        connect_sync(endpoints.database_url, application_name="mysetlist keys") as conn,
    ):
        yield conn


TrustOption = Annotated[
    KeyTrust,
    typer.Option(
        help="browser: public (in page source), its user ids are only claims; "
        "server: a backend's secret, may set user ids and merge identities"
    ),
]


@commands.command()
def create(
    name: Annotated[str, typer.Option(help="what the key is for")] = "default",
    trust: TrustOption = "browser",
) -> None:
    """Create a key; the key itself is printed once (last line), only its hash is kept."""
    with _connection() as conn:
        key_id, key = write_keys.create_key(conn, name, trust)
    console.print(
        f"created {trust} write key {key_id} ({name}); store it now, it is not shown again"
    )
    print(key, flush=True)


@commands.command("trust")
def set_trust(
    key: Annotated[str, typer.Argument(help="the key's id, prefix or the key")],
    trust: Annotated[KeyTrust, typer.Argument(help="browser or server")],
) -> None:
    """Change a key's trust level (API processes apply it within the key cache time)."""
    with _connection() as conn:
        n = write_keys.set_trust(conn, key, trust)
    if n == 0:
        console.print(f"[red]no active key matches {key!r}[/red]")
        raise typer.Exit(1)
    console.print(f"{n} key(s) now {trust}")


@commands.command("list")
def list_() -> None:
    """List keys (prefix, name, trust, created, revoked)."""
    with _connection() as conn:
        rows = write_keys.list_keys(conn)
    table = Table("id", "name", "prefix", "trust", "created", "revoked")
    for row in rows:
        revoked = row["revoked_at"]
        table.add_row(
            str(row["id"]), row["name"], row["key_prefix"] + "…", row["trust"],
            f"{row['created_at']:%Y-%m-%d %H:%M}", f"{revoked:%Y-%m-%d %H:%M}" if revoked else "",
        )  # fmt: skip
    from mysetlist.startup import stdout_console

    stdout_console().print(table)


@commands.command()
def revoke(key: Annotated[str, typer.Argument(help="the key's id, prefix or the key")]) -> None:
    """Revoke a key (API processes stop accepting it within the key cache time)."""
    with _connection() as conn:
        n = write_keys.revoke_key(conn, key)
    if n == 0:
        console.print(f"[red]no active key matches {key!r}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {n} key(s)")
