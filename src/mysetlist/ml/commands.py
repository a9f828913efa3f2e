"""`mysetlist ml …`: offline evaluation of the models."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from mysetlist.ml.setlists.setlist_history import PlayedShow

if TYPE_CHECKING:
    from mysetlist.core.db import Database
    from mysetlist.ml.model_registry import Registered

T = TypeVar("T")

NAME = "ml"
commands = typer.Typer(
    no_args_is_help=True, help="Machine learning: offline evaluation and training."
)
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
    """Rolling-origin evaluation of the setlist model against four baselines: F1 at each
    predictor's own length (headline), F1@N with the true length given, NDCG@N, and paired
    bootstrap 95 % intervals over test shows."""
    from mysetlist.ml.setlists.offline_evaluation import MODELS, NothingToEvaluate, evaluate
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
        try:
            result = evaluate(history, progress=lambda _artist: bar.advance(task))
        except NothingToEvaluate as exc:
            typer.echo(f"{setlists or 'the demo world'}: {exc}", err=True)
            raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    _print_setlist_table(result, MODELS)


def _print_setlist_table(result: dict[str, Any], models: tuple[str, ...]) -> None:
    table = Table(title="setlist prediction, rolling origin (last 20 % of shows): F1 at each "
                        "predictor's own length")  # fmt: skip
    table.add_column("artist")
    table.add_column("shows", justify="right")
    for name in models:
        table.add_column(f"{name} F1", justify="right")
    table.add_column("model F1@N", justify="right")
    table.add_column("model NDCG", justify="right")
    for artist, row in result["artists"].items():
        if "models" not in row:
            continue
        m = row["models"]
        table.add_row(artist, str(row["shows"]), *(f"{m[name]['f1']:.3f}" for name in models),
                      f"{m['model']['f1_at_n']:.3f}", f"{m['model']['ndcg']:.3f}")  # fmt: skip
    overall = result["overall"]
    table.add_row("overall", f"{result['test_shows']} test",
                  *(f"{overall[name]['f1']:.3f}" for name in models),
                  f"{overall['model']['f1_at_n']:.3f}", f"{overall['model']['ndcg']:.3f}",
                  style="bold")  # fmt: skip
    Console().print(table)
    low, high = result["intervals"]["model_minus_best_baseline"]
    typer.echo(
        f"model - {result['best_baseline']} (the best baseline), F1: 95 % interval "
        f"[{low:+.4f}, {high:+.4f}] over {result['test_shows']} test shows"
    )
    untuned, single = result["untuned_artists"], result["single_show_artists"]
    if untuned:
        typer.echo(f"{_artists(untuned)} without validation shows: their baselines use the "
                   f"default windows, not tuned ones ({_names(untuned)})")  # fmt: skip
    if single:
        typer.echo(f"{_artists(single)} with a single show: not scored ({_names(single)})")


def _artists(names: list[str]) -> str:
    return f"{len(names)} artist{'' if len(names) == 1 else 's'}"


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _read_database(load: Callable[[Any], Awaitable[T]]) -> T:
    """Run `load(conn)` on a connection to the configured (or embedded) database."""
    import asyncio

    from mysetlist.core.db import connect
    from mysetlist.startup import load_all_settings, open_endpoints

    endpoints = open_endpoints(load_all_settings(), quiet=True)

    async def run() -> T:
        async with await connect(endpoints.database_url, application_name="mysetlist-ml") as conn:
            return await load(conn)

    try:
        return asyncio.run(run())
    finally:
        endpoints.stop()


def _demo_world_setlists() -> dict[str, list[PlayedShow]]:
    """The completed shows' setlists in the database (`mysetlist demo` builds them)."""
    from mysetlist.ml.setlists.setlist_store import by_unique_name, played_setlists

    async def load(conn: Any) -> dict[str, list[PlayedShow]]:
        return by_unique_name(await played_setlists(conn))

    setlists = _read_database(load)
    if not setlists:
        typer.echo("no completed shows with setlists: run `mysetlist demo --no-serve`", err=True)
        raise typer.Exit(1)
    return setlists


@commands.command("evaluate")
def evaluate_recommenders(
    interactions: Annotated[
        Path | None, typer.Option(help="CSV: user_id,item_id,weight (e.g. play counts)")
    ] = None,
    item_tags: Annotated[Path | None, typer.Option(help="CSV: item_id,tag,weight")] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="the demo world's interactions instead of files")
    ] = False,
    seed: Annotated[int, typer.Option(help="the split's and the models' random seed")] = 0,
    seeds: Annotated[
        int, typer.Option(min=1, max=20, help="repeat with K splits (seed, seed+1, …)")
    ] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Artist recommenders side by side: whole users held out for cold start (given 1, 3, 5
    interactions), the others split 80/10/10 per user; every model tuned on validation,
    reported on test, with paired bootstrap intervals for the hybrid against the best
    single model."""
    from mysetlist.ml.recommendations.datasets import InteractionFileError, read_interactions
    from mysetlist.ml.recommendations.evaluation import (
        COLD_KS,
        METRICS,
        MODELS,
        NothingToEvaluate,
        evaluate,
        require_test_users,
        split,
    )

    if (interactions is None) == (not synthetic):
        typer.echo("give --interactions FILE.csv or --synthetic", err=True)
        raise typer.Exit(2)
    if interactions is not None:
        try:
            data = read_interactions(interactions, item_tags)
        except InteractionFileError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
    else:
        data = _demo_world_interactions()
    try:
        for n in range(seeds):  # before any output: a one-sentence refusal
            require_test_users(split(data.matrix, seed + n))
    except NothingToEvaluate as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("tuning", total=None)

        def progress(what: str, done: int, planned: int) -> None:
            bar.update(task, description=what, completed=done, total=planned)

        result = evaluate(data, seed=seed, seeds=seeds, progress=progress)
    if as_json:
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        return
    d = result["dataset"]
    duplicates = (
        f", {d['duplicate_rows_summed']} duplicate rows summed"
        if d["duplicate_rows_summed"]
        else ""
    )
    about = (
        f"{d['users']} users x {d['items']} items, {d['interactions']} interactions{duplicates}; "
        f"tuned on validation, @10, seeds {', '.join(map(str, result['seeds']))}"
    )
    sections = [
        ("models", f"all users ({result['users_evaluated']} test users)", result["models"]),
        ("cold_start", f"cold start ({result['cold_start_users']} held-out users, given "
         f"{'/'.join(map(str, COLD_KS))} interactions)", result["cold_start"]),
    ]  # fmt: skip
    sections += [
        (f"k={k}", f"cold start, given {k}", result["cold_start_by_k"][str(k)]) for k in COLD_KS
    ]
    for _key, title, rows in sections:
        table = Table(title=f"{title}: {about}")
        table.add_column("model")
        for metric in METRICS:
            table.add_column(metric, justify="right")
        for name in MODELS:
            row = rows[name]
            table.add_row(name, *("—" if row[m] is None else f"{row[m]:.4f}" for m in METRICS))
        Console().print(table)
    intervals = result["intervals"]
    for slice_name, got in intervals["hybrid_tuned_minus_best_single"].items():
        interval = got["interval"]
        span = "—" if interval is None else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"
        diff = "—" if got["difference"] is None else f"{got['difference']:+.4f}"
        Console().print(
            f"{slice_name}: hybrid_tuned minus {got['best_single']} (best single on validation) "
            f"NDCG@10 {diff}, 95 % {span} over {got['users']} users ({intervals['method']})"
        )


def _demo_world_interactions() -> Any:
    """The demo world's interaction matrix (`mysetlist demo` builds it), genres as tags."""
    from mysetlist.ml.config import load_ml_settings
    from mysetlist.ml.recommendations.training import load_interactions

    async def load(conn: Any) -> Any:
        return await load_interactions(conn, load_ml_settings())

    data = _read_database(load)
    if data.n_interactions == 0:
        typer.echo("no interactions: run `mysetlist demo --no-serve`", err=True)
        raise typer.Exit(1)
    return data


def _train_and_say(
    database_url: str,
    train: Callable[[Database], Awaitable[Registered | None]],
    *,
    nothing_yet: str,
    metric: str | None = None,
) -> str:
    """Run `train` on the database; one line saying what was decided (and `metric`)."""
    import asyncio

    from mysetlist.ml.command_database import command_database

    async def run() -> Registered | None:
        async with command_database(database_url) as db:
            return await train(db)

    got = asyncio.run(run())
    if got is None:
        return nothing_yet
    v = got.version
    measured = f" (validation {metric} {v.metrics[metric]:.4f})" if metric else ""
    return f"{v.name} v{v.version}: {v.decision}{measured}"


def train_recommender_models(database_url: str, *, seed: int, progress: Any = None) -> str:
    """Train and register the artist recommender; one line saying what was decided."""
    from mysetlist.ml.config import load_ml_settings
    from mysetlist.ml.recommendations.training import train_recommenders

    settings = load_ml_settings()
    return _train_and_say(
        database_url,
        lambda db: train_recommenders(db, settings, seed=seed, progress=progress),
        nothing_yet="artist_recommender: no interactions yet, nothing trained",
    )


@commands.command("train")
def train(
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
) -> None:
    """Train every model family on the current data and register it (a version becomes
    active only when its offline metric is no worse than the active one's)."""
    from mysetlist.startup import load_all_settings, open_endpoints

    endpoints = open_endpoints(load_all_settings(), quiet=True)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("artist recommender", total=None)

            def progress(what: str, done: int, planned: int) -> None:
                bar.update(task, description=what, completed=done, total=planned)

            # One call per model family; others add theirs below.
            lines = [train_recommender_models(endpoints.database_url, seed=seed, progress=progress)]
            bar.update(task, description="churn and engagement", completed=0, total=None)
            lines.append(train_churn_and_engagement(endpoints.database_url))
            bar.update(task, description="setlist ranker", completed=0, total=None)
            lines.append(train_setlist_ranker_models(endpoints.database_url))
    finally:
        endpoints.stop()
    for line in lines:
        typer.echo(line)


def train_setlist_ranker_models(database_url: str) -> str:
    """Train and register the cross-artist setlist ranker; one line saying what was decided."""
    from mysetlist.ml.setlists.training import train_setlist_ranker

    return _train_and_say(
        database_url, train_setlist_ranker,
        nothing_yet="setlist_ranker: no played setlists yet, nothing trained", metric="f1",
    )  # fmt: skip


def train_churn_and_engagement(database_url: str) -> str:
    from mysetlist.ml.churn.report import train_summary
    from mysetlist.ml.config import load_ml_settings

    return train_summary(database_url, load_ml_settings())


@commands.command("evaluate-churn")
def evaluate_churn_command(
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="check against the demo world's planted churn")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Time-split evaluation of churn (vs recency) and the engagement forecast (vs last week)."""
    import asyncio

    from mysetlist.ml.churn.report import (
        NoDemoWorld,
        churn_table,
        engagement_table,
        evaluate_report,
    )
    from mysetlist.ml.config import load_ml_settings
    from mysetlist.ml.features.training_data import NotEnoughHistory
    from mysetlist.startup import load_all_settings, open_endpoints

    endpoints = open_endpoints(load_all_settings(), quiet=True)  # checks every setting first
    settings = load_ml_settings()
    try:
        report = asyncio.run(evaluate_report(endpoints.database_url, settings, synthetic=synthetic))
    except (NotEnoughHistory, NoDemoWorld) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        endpoints.stop()
    if as_json:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
        return
    Console().print(churn_table(report))
    Console().print(engagement_table(report))


@commands.command("train-churn")
def train_churn_command() -> None:
    """Train, register and apply the churn and engagement models on the current data."""
    import asyncio

    from mysetlist.ml.churn.report import train_report
    from mysetlist.ml.config import load_ml_settings
    from mysetlist.ml.features.training_data import NotEnoughHistory
    from mysetlist.startup import load_all_settings, open_endpoints

    endpoints = open_endpoints(load_all_settings(), quiet=True)
    try:
        result = asyncio.run(train_report(endpoints.database_url, load_ml_settings()))
    except NotEnoughHistory as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    finally:
        endpoints.stop()
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
