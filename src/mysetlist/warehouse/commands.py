"""`mysetlist etl run|status|check|rebuild`: run the ETL in this process, show recent runs,
check the whole warehouse over a day range, or rebuild it from scratch.

`etl run` and `etl rebuild` exit codes: 0 succeeded, 1 failed or cancelled, 2 another run
is active, 3 succeeded but a data-quality check failed. `etl check`: 0 every check passed,
1 a check failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn
from rich.table import Table

NAME = "etl"
commands = typer.Typer(no_args_is_help=True, help="Data warehouse ETL.")
console = Console(stderr=True)


def _database_url() -> tuple[str, Any]:
    from mysetlist.startup import load_all_settings, open_endpoints

    settings = load_all_settings()
    endpoints = open_endpoints(settings, quiet=True)
    # Direct, not through a pooler: the pipeline holds session locks and session settings.
    return endpoints.direct_url, (settings, endpoints)


@commands.command("run")
def run(
    from_day: Annotated[
        str | None, typer.Option("--from", help="first day (YYYY-MM-DD) to (re)load")
    ] = None,
    to_day: Annotated[str | None, typer.Option("--to", help="last day (YYYY-MM-DD)")] = None,
    steps: Annotated[
        str | None, typer.Option(help="comma-separated steps (default: all for the mode)")
    ] = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="only events received since the watermark")
    ] = False,
) -> None:
    """Run the ETL now: from the watermark to yesterday, or --from/--to to re-run history."""
    from mysetlist.warehouse import pipeline
    from mysetlist.warehouse.config import EtlConfig
    from mysetlist.warehouse.steps import RunMode, normalise_steps

    try:
        frm = date.fromisoformat(from_day) if from_day else None
        to = date.fromisoformat(to_day) if to_day else None
    except ValueError as exc:
        console.print(f"[red]bad date: {exc}[/red]")
        raise typer.Exit(2) from None
    if frm and to and frm > to:
        console.print("[red]--from must not be after --to[/red]")
        raise typer.Exit(2)
    mode: RunMode = "incremental" if incremental else ("range" if frm or to else "daily")
    step_list = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    try:
        normalise_steps(step_list, mode)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    database_url, (settings, endpoints) = _database_url()
    config = EtlConfig.from_settings(settings)
    request = pipeline.RunRequest(
        trigger="cli", mode=mode, from_day=frm, to_day=to, steps=step_list
    )
    try:
        code = run_with_progress(
            lambda progress: pipeline.execute(
                database_url, config, request=request, progress=progress
            )
        )
    finally:
        endpoints.stop()
    raise typer.Exit(code)


def run_with_progress(
    start: Callable[[Callable[[str, int, int], None]], Coroutine[Any, Any, Any]],
) -> int:
    """Run an ETL run (`start(progress)`) under progress bars, print its steps; the exit
    code (see the module docstring)."""
    from mysetlist.warehouse import pipeline

    code = 0
    result: Any = None
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=max(total, 1))
            bar.update(tasks[step], completed=done, total=max(total, 1))

        try:
            result = asyncio.run(start(progress))
        except pipeline.EtlBusy as exc:
            console.print(f"[yellow]{exc}[/yellow]")
            code = 2
        except (pipeline.EtlFailed, pipeline.EtlTransient) as exc:
            console.print(f"[red]ETL run failed: {exc}[/red]")
            code = 1
    if result is not None:
        _print_result(result)
        if result.status != "succeeded":
            code = 1
        elif result.checks_status == "failed":
            code = 3
    return code


def _print_result(result: Any) -> None:
    table = Table(title=f"ETL run {result.run_id}: {result.status}")
    table.add_column("step")
    table.add_column("ms", justify="right")
    table.add_column("rows", justify="right")
    for step, t in result.step_timings.items():
        table.add_row(step, f"{t['ms']:.0f}", str(t["rows"]))
    console.print(table)
    console.print(
        f"days {result.from_day} .. {result.to_day} ({result.days}), "
        f"{result.duration_ms / 1000:.1f} s, quality checks: {result.checks_status}"
        + (f" ({result.checks_failed} failed)" if result.checks_failed else "")
    )


@commands.command("status")
def status(limit: Annotated[int, typer.Option(min=1, max=200)] = 10) -> None:
    """Show the active run, recent runs and the watermark."""
    from mysetlist.core.db import connect
    from mysetlist.warehouse import runs

    database_url, (_, endpoints) = _database_url()

    async def load() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        async with await connect(database_url, application_name="mysetlist-etl-status") as conn:
            return await runs.list_runs(conn, limit), await runs.watermark(conn)

    try:
        rows, wm = asyncio.run(load())
    finally:
        endpoints.stop()
    table = Table(title="ETL runs")
    for col in ("id", "trigger", "mode", "range", "status", "checks", "days", "seconds", "error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]), r["trigger"], r["mode"],
            f"{r['from_day'] or ''} .. {r['to_day'] or ''}", r["status"],
            r["checks_status"] + (f" ({r['checks_failed']})" if r["checks_failed"] else ""),
            f"{r['days_done']}/{r['days_total']}",
            f"{(r['duration_ms'] or 0) / 1000:.1f}", (r["error"] or "")[:60],
        )  # fmt: skip
    from mysetlist.startup import stdout_console

    out = stdout_console()
    out.print(table)
    if wm:
        out.print(f"watermark: last full day {wm['last_full_day']}, last received {wm['position']}")


@commands.command("check")
def check(
    from_day: Annotated[str, typer.Option("--from", help="first day (YYYY-MM-DD)")],
    to_day: Annotated[str, typer.Option("--to", help="last day (YYYY-MM-DD)")],
) -> None:
    """Run every data-quality check over the whole warehouse for a day range (a run checks
    only the days it loaded). Exit 1 when a check fails."""
    from mysetlist.core.db import connect
    from mysetlist.warehouse import quality

    try:
        frm, to = date.fromisoformat(from_day), date.fromisoformat(to_day)
    except ValueError as exc:
        console.print(f"[red]bad date: {exc}[/red]")
        raise typer.Exit(2) from None
    if frm > to:
        console.print("[red]--from must not be after --to[/red]")
        raise typer.Exit(2)
    database_url, (_, endpoints) = _database_url()

    async def run_checks(progress: Any) -> list[Any]:
        async with await connect(database_url, application_name="mysetlist-etl-check") as conn:
            return await quality.check_range(conn, frm, to, progress=progress)

    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"checking {frm} .. {to}", total=None)
            results = asyncio.run(
                run_checks(lambda done, total: bar.update(task, completed=done, total=total))
            )
    finally:
        endpoints.stop()
    table = Table(title=f"warehouse checks {frm} .. {to}")
    for col in ("check", "category", "result", "details"):
        table.add_column(col)
    for r in results:
        details = ", ".join(f"{k}: {v}" for k, v in r.details.items() if v not in (None, [], {}))
        table.add_row(
            r.name, r.category, "[green]passed[/green]" if r.passed else "[red]FAILED[/red]",
            "" if r.passed else details[:200],
        )  # fmt: skip
    console.print(table)
    failed = [r.name for r in results if not r.passed]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed: {', '.join(failed)}[/red]")
        raise typer.Exit(1)
    console.print("[green]every check passed[/green]")


def rebuild_with_progress(database_url: str, settings: Any) -> int:
    """Clear the warehouse and load every day with events again, under progress bars;
    the exit code of `etl run`."""
    from mysetlist.warehouse.config import EtlConfig
    from mysetlist.warehouse.rebuild import rebuild_warehouse

    config = EtlConfig.from_settings(settings)
    return run_with_progress(
        lambda progress: rebuild_warehouse(database_url, config, progress=progress)
    )


@commands.command("rebuild")
def rebuild() -> None:
    """Clear the warehouse and reload every day that has events (after the source data was
    replaced rather than appended to, e.g. a new demo world)."""
    database_url, (settings, endpoints) = _database_url()
    try:
        code = rebuild_with_progress(database_url, settings)
    finally:
        endpoints.stop()
    raise typer.Exit(code)
