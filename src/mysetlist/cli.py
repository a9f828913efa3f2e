"""The `mysetlist` command: thin wrappers over the services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mysetlist.core.config import Settings
from mysetlist.core.embedded import Endpoints

if TYPE_CHECKING:
    from mysetlist.core.worker_supervisor import WorkerSupervisor
from mysetlist.startup import load_all_settings, started

cli = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console(stderr=True)

# A stable id for the operator the demo prints a token for.
DEMO_ADMIN_ID = "00000000-0000-4000-8000-000000000001"

LogLevel = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        help="debug, info, warning, error (default: LOG_LEVEL, else warning at a terminal"
        " and info otherwise)",
        show_default=False,
    ),
]
LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        envvar="LOG_FORMAT",
        help="auto (readable lines at a terminal, JSON otherwise), json or console",
    ),
]
# A task that runs beside the API in its event loop until the server stops.
Companion = Callable[[Any], Coroutine[Any, Any, None]]


def _configure_logs(settings: Settings, log_level: str | None, log_format: str) -> None:
    """--log-level, else LOG_LEVEL when set, else the format's default (see json_logging)."""
    from mysetlist.core.json_logging import LOG_FORMATS, LOG_LEVELS, configure_logging

    level = log_level or (settings.log_level if "log_level" in settings.model_fields_set else None)
    if level is not None and level.upper() not in LOG_LEVELS:
        typer.echo(f"log level {level!r}: must be one of {', '.join(LOG_LEVELS)}", err=True)
        raise typer.Exit(2)
    if log_format not in LOG_FORMATS:
        typer.echo(f"log format {log_format!r}: must be one of {', '.join(LOG_FORMATS)}", err=True)
        raise typer.Exit(2)
    configure_logging(level, log_format)  # type: ignore[arg-type]  # checked just above


def _require_uuid(value: str) -> str:
    """`value` as a canonical uuid; exit 2 (a usage error) when it is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        console.print(f"[red]not a uuid: {value}[/red]")
        raise typer.Exit(2) from None


def _local_url(host: str, port: int) -> str:
    """The API's URL from this machine (a wildcard listen address is reached by loopback)."""
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def _require_free_port(host: str, port: int) -> None:
    """Fail before starting anything (servers, a world build, a banner with a token) when
    the API could not listen anyway."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            typer.echo(
                f"cannot listen on {host}:{port}: {exc.strerror}; is another server running?"
                " Choose another port with --port.",
                err=True,
            )
            raise typer.Exit(1) from None


@contextlib.contextmanager
def _serving(
    host: str, port: int, log_level: str | None, log_format: str
) -> Iterator[tuple[Settings, Endpoints]]:
    """What a serving command does first: check the port is free (before starting any
    server), start or attach to the servers, set up logging."""
    _require_free_port(host, port)
    with started() as (settings, endpoints):
        _configure_logs(settings, log_level, log_format)
        yield settings, endpoints


def _run_api(
    settings: Settings, endpoints: Endpoints, host: str, port: int, *, with_worker: bool,
    companions: Sequence[Companion] = (),
) -> None:  # fmt: skip
    """Serve until Ctrl-C; `companions` run in the same event loop, each given the uvicorn
    server, and are cancelled when it stops."""
    import uvicorn

    from mysetlist.api import create_app
    from mysetlist.core.http_middleware import SERVER_OPTIONS

    app = create_app(settings, endpoints.database_url, endpoints.redis_url, with_worker=with_worker)
    config = uvicorn.Config(
        app, host=host, port=port, loop="uvloop", http="httptools",
        log_config=None, access_log=False, timeout_graceful_shutdown=5, **SERVER_OPTIONS,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def serve() -> None:
        tasks = [asyncio.create_task(companion(server)) for companion in companions]
        try:
            await server.serve()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=config.get_loop_factory()) as runner,
    ):
        runner.run(serve())
    if not server.started:
        raise typer.Exit(3)  # as uvicorn.run: the server could not start


def _worker_child(
    settings: Settings, endpoints: Endpoints, log_level: str | None, log_format: str
) -> WorkerSupervisor:
    """`mysetlist worker` as a supervised child process (core/worker_supervisor.py),
    attached to the servers this process resolved, its metrics merged into the API's."""
    from mysetlist.core.worker_metrics import merge_worker_metrics_from
    from mysetlist.core.worker_supervisor import WorkerSupervisor, fresh_metrics_dir

    env = os.environ | {"DATABASE_URL": endpoints.database_url, "REDIS_URL": endpoints.redis_url}
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # else the API aggregates it already
        metrics_dir = fresh_metrics_dir(settings.data_dir / "metrics" / "worker")
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        merge_worker_metrics_from(metrics_dir)
    args = ["--log-format", log_format, *(["--log-level", log_level] if log_level else [])]
    return WorkerSupervisor.for_worker(env, extra_args=args)


def _run_api_with_worker(
    settings: Settings, endpoints: Endpoints, host: str, port: int,
    log_level: str | None, log_format: str, companions: Sequence[Companion] = (),
) -> None:  # fmt: skip
    """The API in this process, the job worker in a supervised child: exit 1 when the
    worker kept dying."""
    supervisor = _worker_child(settings, endpoints, log_level, log_format)
    _run_api(settings, endpoints, host, port, with_worker=False,
             companions=[*companions, supervisor])  # fmt: skip
    if supervisor.failed:
        raise typer.Exit(1)


def _banner(
    host: str, port: int, settings: Settings, database_url: str, *, print_token: bool
) -> None:
    from mysetlist.core.auth import mint_token
    from mysetlist.dashboard.config import dashboard_settings
    from mysetlist.dashboard.sessions import create_login_link

    base = _local_url(host, port)
    console.print(f"[bold green]MySetlist API[/bold green]  {base}   (docs: {base}/docs)")
    link = create_login_link(
        database_url, DEMO_ADMIN_ID, public_url=base,
        ttl_seconds=dashboard_settings().login_link_seconds,
    )  # fmt: skip
    console.print("dashboard (one-time login link, open it in your browser):")
    # On stderr whole (Rich would wrap it); stdout's one line stays `export TOKEN=…`.
    typer.echo(link, err=True)
    if not print_token:
        console.print("API token: `mysetlist token USER_ID --admin` (or `serve --print-token`)")
        return
    token = mint_token(settings, DEMO_ADMIN_ID, role="authenticated", admin=True, ttl_seconds=86400)
    console.print("admin token (24 h); paste this line into another shell for the README's curl:")
    print(f"export TOKEN={token}", flush=True)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    print_token: Annotated[
        bool,
        typer.Option(
            "--print-token", help="also print an operator token (24 h) as `export TOKEN=…`"
        ),
    ] = False,
    log_level: LogLevel = None,
    log_format: LogFormat = "auto",
) -> None:
    """API, background worker and scheduler as one command (for small installs): the worker
    runs in a child process of its own, restarted if it dies."""
    with _serving(host, port, log_level, log_format) as (settings, endpoints):
        _banner(host, port, settings, endpoints.database_url, print_token=print_token)
        _run_api_with_worker(settings, endpoints, host, port, log_level, log_format)


@cli.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    log_level: LogLevel = None,
    log_format: LogFormat = "auto",
) -> None:
    """The HTTP API only (scale out with --workers and more hosts)."""
    with _serving(host, port, log_level, log_format) as (settings, endpoints):
        if workers == 1:
            _run_api(settings, endpoints, host, port, with_worker=False)
            return
        import uvicorn

        from mysetlist.core.http_middleware import SERVER_OPTIONS

        # Worker processes attach to the servers we resolved (embedded or not).
        os.environ["DATABASE_URL"] = endpoints.database_url
        os.environ["REDIS_URL"] = endpoints.redis_url
        uvicorn.run(
            "mysetlist.api:create_app_from_env", factory=True, host=host, port=port,
            workers=workers, loop="uvloop", http="httptools", access_log=False, **SERVER_OPTIONS,
        )  # fmt: skip


@cli.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1)] = 4,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            envvar="MYSETLIST_WORKER_METRICS_PORT",
            min=1,
            max=65535,
            help="serve this worker's Prometheus /metrics on this port",
        ),
    ] = None,
    metrics_host: Annotated[
        str,
        typer.Option(
            "--metrics-host",
            envvar="MYSETLIST_WORKER_METRICS_HOST",
            help="interface for --metrics-port",
        ),
    ] = "127.0.0.1",
    log_level: LogLevel = None,
    log_format: LogFormat = "auto",
) -> None:
    """Background jobs and schedules (ETL, rollups, partition upkeep, deliveries)."""
    from mysetlist.jobs import run_worker

    with started() as (settings, endpoints), contextlib.suppress(KeyboardInterrupt):
        _configure_logs(settings, log_level, log_format)
        if metrics_port is not None:
            from mysetlist.core.worker_metrics import serve_worker_metrics

            try:
                serve_worker_metrics(metrics_port, metrics_host)
            except OSError as exc:
                typer.echo(f"cannot serve metrics on {metrics_host}:{metrics_port}:"
                           f" {exc.strerror}", err=True)  # fmt: skip
                raise typer.Exit(1) from None
        asyncio.run(
            run_worker(
                endpoints.database_url,
                endpoints.redis_url,
                settings,
                concurrency=concurrency,
                own_process=True,
            )
        )


@cli.command()
def migrate() -> None:
    """Apply pending schema migrations."""
    with started():
        console.print("schema is up to date")


@cli.command()
def openapi() -> None:
    """Print the API's /openapi.json (the HTTP contract) without starting any server."""
    import json

    from mysetlist.api import create_app

    # Building the app opens no connection (that happens at startup), so the URLs go unused.
    app = create_app(load_all_settings(), "postgresql://unused", "redis://unused")
    print(json.dumps(app.openapi(), indent=2, sort_keys=True))


@cli.command()
def token(
    user_id: Annotated[str, typer.Argument(help="the user's id (uuid)")],
    role: Annotated[str, typer.Option(help="authenticated or service_role")] = "authenticated",
    admin: Annotated[bool, typer.Option("--admin", help="mark as operator")] = False,
    ttl: Annotated[int, typer.Option(help="lifetime in seconds")] = 3600,
) -> None:
    """Mint a JWT for development; the token is the last line printed."""
    from mysetlist.core.auth import mint_token

    _require_uuid(user_id)
    if role not in ("authenticated", "service_role"):
        console.print("[red]--role must be authenticated or service_role[/red]")
        raise typer.Exit(2)
    print(mint_token(load_all_settings(), user_id, role=role, admin=admin, ttl_seconds=ttl))


@cli.command("dashboard-link")
def dashboard_link(
    operator: Annotated[str, typer.Option(help="the operator's user id (uuid)")] = DEMO_ADMIN_ID,
    url: Annotated[
        str | None, typer.Option(help="the API's public URL (default: DASHBOARD_PUBLIC_URL)")
    ] = None,
) -> None:
    """Print a one-time, short-lived dashboard login URL (the last line printed)."""
    from mysetlist.dashboard.config import dashboard_settings
    from mysetlist.dashboard.sessions import create_login_link

    _require_uuid(operator)
    with started(quiet=True) as (_, endpoints):
        settings = dashboard_settings()
        link = create_login_link(
            endpoints.database_url, operator, public_url=url or settings.public_url,
            ttl_seconds=settings.login_link_seconds,
        )  # fmt: skip
    console.print(f"one-time link, valid {settings.login_link_seconds} s:")
    print(link, flush=True)


@cli.command()
def demo(
    users: Annotated[int, typer.Option(min=1)] = 5000,
    days: Annotated[int, typer.Option(min=1, help="days of activity history")] = 120,
    seed: Annotated[int, typer.Option()] = 42,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="seed, then exit")] = False,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="simulated fans active while it serves")
    ] = True,
    train: Annotated[
        bool, typer.Option("--train/--no-train", help="train the models at start")
    ] = True,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            "--as-of",
            help="the world's present, UTC (default: now); same seed and hour, same world",
        ),
    ] = None,
    log_level: LogLevel = None,
    log_format: LogFormat = "auto",
) -> None:
    """Seed a synthetic MySetlist world, then serve it: with simulated fans active
    (--no-live: without) and the models training in the background (--no-train: not)."""
    from mysetlist.demo.world import WorldSpec, build_world, ensure_demo_operator

    if not no_serve:
        _require_free_port(host, port)  # before a build that can take minutes
    outbox = _demo_outbox()
    with started() as (settings, endpoints):
        _configure_logs(settings, log_level, log_format)
        summary = build_world(
            endpoints.database_url,
            WorldSpec(users=users, days=days, seed=seed),
            progress=True,
            now=as_of.replace(tzinfo=as_of.tzinfo or UTC) if as_of else None,
        )
        console.print(f"[bold]synthetic world:[/bold] {summary}")
        # The new world replaced the events the warehouse was loaded from: rebuild it.
        from mysetlist.warehouse.commands import rebuild_with_progress

        if rebuild_with_progress(endpoints.database_url, settings) != 0:
            console.print("[yellow]warehouse rebuild incomplete: see `mysetlist etl status`")
        ensure_demo_operator(endpoints.database_url, DEMO_ADMIN_ID)
        if no_serve:
            return
        _require_free_port(host, port)
        # A local demo: the README's Quick start pastes this token into curl.
        _banner(host, port, settings, endpoints.database_url, print_token=True)
        companions: list[Companion] = []
        if outbox is not None:
            console.print(
                f"email: no provider configured, so messages go to the local outbox {outbox}"
                " (.eml files; dashboard: Local outbox)", highlight=False,
            )  # fmt: skip
        if train:
            console.print("models: training in the background; churn, recommendations and the"
                          " model panel fill in when a line here says so")  # fmt: skip
            companions.append(_demo_training(endpoints))
        if live:
            console.print("live: simulated fans browse, vote, follow and get notified, a few"
                          " events a second (--no-live: none)")  # fmt: skip
            companions.append(_demo_fans(host, port, settings, endpoints, seed))
        console.print("[dim]Ctrl-C stops the demo[/dim]")
        _run_api_with_worker(
            settings, endpoints, host, port, log_level, log_format, companions=companions
        )


def _demo_outbox() -> Path | None:
    """Without a configured email provider the demo mails into a local outbox under the
    data dir (instead of failing against an SMTP server that is not there); its path, or
    None when a provider is configured (EMAIL_PROVIDERS or SMTP_URL, environment or .env)."""
    from mysetlist.core.config import ConfigError
    from mysetlist.notify.config import load_notify_settings

    data_dir = load_all_settings().data_dir
    try:
        notify = load_notify_settings()
    except ConfigError as exc:  # a bad notify variable: one line, exit 2, as startup does
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if notify.model_fields_set & {"email_providers", "smtp_url"}:
        return None
    outbox = data_dir / "outbox"
    # Read by this process's deliverer, which loads the notify settings when first needed.
    os.environ["EMAIL_PROVIDERS"] = "outbox"
    os.environ["EMAIL_OUTBOX_DIR"] = str(outbox)
    return outbox


def _demo_training(endpoints: Endpoints) -> Companion:
    """`mysetlist ml train` as a child process beside the API (its own core, and Ctrl-C
    ends it); one line when it is done."""

    async def train(server: Any) -> None:
        urls = {"DATABASE_URL": endpoints.database_url, "REDIS_URL": endpoints.redis_url}
        env = os.environ | urls | {"OPENBLAS_NUM_THREADS": "1"}
        began = time.monotonic()
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mysetlist", "ml", "train", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            out, err = await child.communicate()
        except asyncio.CancelledError:
            if child.returncode is None:
                child.terminate()
                await child.wait()
            raise
        seconds = time.monotonic() - began
        if child.returncode == 0:
            # "churn v2: … promoted (…)" per model; the names and versions say enough here.
            names = [line.split(":")[0] for line in out.decode().splitlines() if line.strip()]
            console.print(f"models trained in {seconds:.0f} s: {', '.join(names)}"
                          " (details: `mysetlist ml train`)", highlight=False)  # fmt: skip
        else:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            console.print(f"[yellow]model training failed ({child.returncode}): "
                          f"{' / '.join(tail)}; run `mysetlist ml train`[/yellow]")  # fmt: skip

    return train


def _demo_fans(
    host: str, port: int, settings: Settings, endpoints: Endpoints, seed: int
) -> Companion:
    """Simulated fans against this API once it listens (demo/live.py)."""

    async def fans(server: Any) -> None:
        from mysetlist.demo.live import FanSimulator

        # uvicorn offers a flag, not an event, for "listening".
        while not server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        base = _local_url(host, port)
        simulator = FanSimulator(
            base, endpoints.database_url, settings, operator_id=DEMO_ADMIN_ID, seed=seed
        )
        await simulator.run(stopping=lambda: bool(server.should_exit))

    return fans


auth_commands = typer.Typer(no_args_is_help=True, help="Token revocation.")
cli.add_typer(auth_commands, name="auth")


@auth_commands.command("revoke")
def revoke(user_id: Annotated[str, typer.Argument(help="the user's id (uuid)")]) -> None:
    """Revoke every token and dashboard session of USER_ID issued until now (401 from then
    on; in running API processes within MYSETLIST_TOKEN_REVOCATION_REFRESH_SECONDS)."""
    user = _require_uuid(user_id)
    with started(quiet=True) as (settings, endpoints):
        valid_after = asyncio.run(_revoke(settings, endpoints, user))
    console.print("tokens issued before this moment are refused:")
    print(datetime.fromtimestamp(valid_after, UTC).isoformat(), flush=True)


async def _revoke(settings: Settings, endpoints: Endpoints, user_id: str) -> float:
    from mysetlist.core.audit import record_audit
    from mysetlist.core.runtime import open_runtime
    from mysetlist.core.token_revocation import revoke_user_tokens

    runtime = await open_runtime(settings, endpoints.database_url, endpoints.redis_url)
    try:
        async with runtime.db.transaction() as conn:
            valid_after = await revoke_user_tokens(conn, user_id, runtime.revocations)
            await record_audit(
                conn, "auth.tokens_revoked", actor_role="cli", target=("user", user_id)
            )
        return valid_after
    finally:
        await runtime.close()


def _mount_capability_commands() -> None:
    """Each capability's `commands.py` may export `commands: typer.Typer` and `NAME`."""
    from mysetlist.capabilities import capability_modules

    for module in capability_modules("commands"):
        cli.add_typer(module.commands, name=module.NAME)


_mount_capability_commands()


def main() -> None:
    cli()
