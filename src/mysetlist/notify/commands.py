"""`mysetlist notify vapid-keys`: a new VAPID key pair for web push."""

from __future__ import annotations

import typer

NAME = "notify"
commands = typer.Typer(no_args_is_help=True, help="Notifications.")


@commands.command("vapid-keys")
def vapid_keys() -> None:
    """Print VAPID_PRIVATE_KEY (for the server's environment) and the public key browsers
    pass as applicationServerKey to pushManager.subscribe()."""
    from mysetlist.notify.push.channel import generate_vapid_keys

    private, public = generate_vapid_keys()
    typer.echo(f"VAPID_PRIVATE_KEY={private}")
    typer.echo("VAPID_SUBJECT=mailto:ops@example.com  # a contact for push services")
    typer.echo(f"# applicationServerKey (public): {public}")


@commands.callback()
def _group() -> None:
    """Notifications."""
