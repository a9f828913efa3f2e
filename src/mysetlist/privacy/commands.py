"""`mysetlist privacy erase USER_ID`: the same erasure as `DELETE /api/privacy/users/{id}`,
carried out at once in this process (the request row is written first, so a crash here
is finished by a worker's sweep)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

NAME = "privacy"
commands = typer.Typer(no_args_is_help=True, help="GDPR erasure and encryption key rotation.")
console = Console(stderr=True)


async def _erase(user_id: str) -> dict[str, Any] | None:
    from mysetlist.core.runtime import open_runtime
    from mysetlist.privacy.erasure import erase, request_erasure
    from mysetlist.startup import started

    with started(quiet=True) as (settings, endpoints):
        rt = await open_runtime(settings, endpoints.database_url, endpoints.redis_url)
        try:
            request_id, _ = await request_erasure(
                rt.db, user_id, requested_by=None, requested_by_role="cli", source="cli",
                revocations=rt.revocations,
            )  # fmt: skip
            console.print(f"erasure request {request_id}: erasing user {user_id}")
            return await erase(
                rt.db, rt.redis, rt.cipher, request_id, prefix=settings.redis_key_prefix
            )
        finally:
            await rt.close()


@commands.command("erase")
def erase_command(
    user_id: Annotated[str, typer.Argument(help="the user's id (uuid)")],
) -> None:
    """Erase everything held about USER_ID; prints the request's counts as JSON."""
    try:
        user = str(uuid.UUID(user_id))
    except ValueError:
        typer.echo(f"{user_id!r} is not a user id (uuid)", err=True)
        raise typer.Exit(2) from None
    status = asyncio.run(_erase(user))
    print(orjson.dumps(status, default=str).decode(), flush=True)


async def _rotate(batch_size: int) -> dict[str, Any]:
    from rich.progress import Progress

    from mysetlist.core.runtime import open_runtime
    from mysetlist.privacy.key_rotation import rotate_keys
    from mysetlist.startup import started

    with started(quiet=True) as (settings, endpoints), Progress(console=console) as bar:
        rt = await open_runtime(settings, endpoints.database_url, endpoints.redis_url)
        tasks: dict[str, Any] = {}

        def progress(column: str, done: int, total: int) -> None:
            if column not in tasks:
                tasks[column] = bar.add_task(column, total=total or 1)
            bar.update(tasks[column], completed=done)

        try:
            result = await rotate_keys(rt.db, rt.cipher, batch_size=batch_size, progress=progress)
        finally:
            await rt.close()
    return {
        "key_id": result.key_id,
        "rewritten": result.rewritten,
        "undecryptable": result.undecryptable,
    }


@commands.command("rotate-keys")
def rotate_keys_command(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="values per transaction")
    ] = 500,
) -> None:
    """Re-encrypt every encrypted column under MYSETLIST_ENCRYPTION_KEY (the old keys in
    MYSETLIST_ENCRYPTION_PREVIOUS_KEYS decrypt meanwhile). Online, in batches; run it again
    to resume. Exit 1 when a value is under a key the ring no longer has."""
    result = asyncio.run(_rotate(batch_size))
    print(orjson.dumps(result).decode(), flush=True)
    if result["undecryptable"]:
        raise typer.Exit(1)
