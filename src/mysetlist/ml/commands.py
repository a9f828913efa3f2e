"""`mysetlist ml …`: offline evaluation of the models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mysetlist.ml.setlists.setlist_history import PlayedShow

NAME = "ml"
commands = typer.Typer(no_args_is_help=True, help="Machine learning: offline evaluation.")
console = Console(stderr=True)


@commands.command("evaluate-setlists")
def evaluate_setlists(
    setlists: Annotated[
        Path | None,
        typer.Option(help="CSV: show_id,date,artist,position,song[,venue,city,tour]"),
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="the demo world's setlists instead of a file")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Rolling-origin evaluation of the setlist model against last_show and recent_frequency."""
    from mysetlist.ml.setlists.offline_evaluation import MODELS, evaluate
    from mysetlist.ml.setlists.setlist_history import SetlistFileError, read_setlists_csv

    if (setlists is None) == (not synthetic):
        typer.echo("give --setlists FILE.csv or --synthetic", err=True)
        raise typer.Exit(2)
    if setlists is not None:
        try:
            history = read_setlists_csv(setlists)
        except FileNotFoundError:
            typer.echo(f"{setlists}: no such file", err=True)
            raise typer.Exit(2) from None
        except SetlistFileError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    else:
        history = _demo_world_setlists()
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("evaluating artists", total=len(history))
        result = evaluate(history, progress=lambda _artist: bar.advance(task))
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    table = Table(title="setlist prediction, rolling origin (last 20 % of shows)")
    table.add_column("artist")
    table.add_column("shows", justify="right")
    for name in MODELS:
        table.add_column(f"{name} F1", justify="right")
    table.add_column("model NDCG", justify="right")
    artists = result["artists"]
    assert isinstance(artists, dict)
    for artist, row in artists.items():
        models = row["models"]
        table.add_row(artist, str(row["shows"]), *(f"{models[m]['f1']:.3f}" for m in MODELS),
                      f"{models['model']['ndcg']:.3f}")  # fmt: skip
    overall = result["overall"]
    assert isinstance(overall, dict)
    table.add_row("overall", "", *(f"{overall[m]['f1']:.3f}" for m in MODELS),
                  f"{overall['model']['ndcg']:.3f}", style="bold")  # fmt: skip
    Console().print(table)


def _demo_world_setlists() -> dict[str, list[PlayedShow]]:
    """The completed shows' setlists in the database (`mysetlist demo` builds them)."""
    import asyncio

    from mysetlist.core.db import connect
    from mysetlist.ml.setlists.setlist_store import by_unique_name, played_setlists
    from mysetlist.startup import load_all_settings, open_endpoints

    endpoints = open_endpoints(load_all_settings(), quiet=True)
    try:

        async def load() -> dict[str, list[PlayedShow]]:
            url = endpoints.database_url
            async with await connect(url, application_name="mysetlist-ml") as conn:
                return by_unique_name(await played_setlists(conn))

        setlists = asyncio.run(load())
    finally:
        endpoints.stop()
    if not setlists:
        typer.echo("no completed shows with setlists: run `mysetlist demo --no-serve`", err=True)
        raise typer.Exit(1)
    return setlists
