"""`sgt admin`: migrate the schema, manage users and list trainers without HTTP.

Each command checks its options first, then opens the service context on the configured
database inside `_service_context`, which closes it however the command ends. Imports the
services and config, never the API or the trainer.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from sgt.config import load_settings
from sgt.errors import SgtError
from sgt.services import trainers, users
from sgt.services.context import ServiceContext, open_context


@contextmanager
def _service_context() -> Iterator[ServiceContext]:
    """The context on the configured database (opening it migrates), closed on every path; a
    domain error ends the command with its message instead of a traceback."""
    ctx = open_context(load_settings())
    try:
        yield ctx
    except SgtError as error:
        raise click.ClickException(str(error)) from error
    finally:
        ctx.close()


def _parse_end_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return users.parse_end_time(value)
    except ValueError:
        raise click.BadParameter("expected 'YYYY-MM-DD HH:MM:SS' (UTC)") from None


@click.group()
def admin() -> None:
    """Administration on the configured database (SGT_DATABASE_URL / SGT_DATA_DIR)."""


@admin.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    with _service_context():  # opening it migrates
        pass
    click.echo("schema is up to date")


@admin.command("system-key")
def system_key() -> None:
    """Print the system key (from configuration, or generated into the data directory)."""
    with _service_context() as ctx:
        key = ctx.system_key
    click.echo(key)


@admin.group()
def user() -> None:
    """Create, rotate, expire and list users."""


@user.command("create")
@click.argument("secret_id")
@click.option("--key", "secret_key", help="The user's secret key; generated when omitted.")
@click.option("--doc", default="", help="A note about the user.")
@click.option("--end-time", help="When the key stops working, 'YYYY-MM-DD HH:MM:SS' UTC.")
def create_user(secret_id: str, secret_key: str | None, doc: str, end_time: str | None) -> None:
    """Create a user (or replace its key) and print the key."""
    key = secret_key or secrets.token_urlsafe(24)
    ends = _parse_end_time(end_time)
    with _service_context() as ctx:
        users.put_user(ctx, secret_id=secret_id, secret_key=key, doc=doc, end_time=ends)
    click.echo(key)


@user.command("rotate")
@click.argument("secret_id")
@click.option("--key", "secret_key", help="The new key; generated when omitted.")
def rotate_user(secret_id: str, secret_key: str | None) -> None:
    """Give a user a new key (the old one stops working) and print it."""
    key = secret_key or secrets.token_urlsafe(24)
    with _service_context() as ctx:
        found = users.rotate_user_key(ctx, secret_id=secret_id, secret_key=key)
    if not found:
        raise click.ClickException(f"no user '{secret_id}'")
    click.echo(key)


@user.command("expire")
@click.argument("secret_id")
@click.option("--at", "end_time", help="When the key stops working, 'YYYY-MM-DD HH:MM:SS' UTC.")
@click.option("--never", is_flag=True, help="Remove the expiry.")
def expire_user(secret_id: str, end_time: str | None, never: bool) -> None:
    """Set when a user's key stops working (default: now)."""
    when = (
        None
        if never
        else (_parse_end_time(end_time) or datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    )
    with _service_context() as ctx:
        found = users.expire_user(ctx, secret_id, when)
    if not found:
        raise click.ClickException(f"no user '{secret_id}'")
    click.echo(f"{secret_id}: {'never expires' if when is None else f'expires {when} UTC'}")


@user.command("list")
def list_all_users() -> None:
    """List users: secret_id, expiry, doc."""
    with _service_context() as ctx:
        listed = users.list_users(ctx)
    for secret_id, doc, end_time in listed:
        click.echo(f"{secret_id}\t{end_time or '-'}\t{doc}")


@admin.command("trainers")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_trainers(as_json: bool) -> None:
    """List trainers: name, host, pid, seconds since the last heartbeat (database clock), the
    model in training, restarts by the supervisor. A killed trainer stays listed, its heartbeat
    ageing, until it is pruned an hour later."""
    with _service_context() as ctx:
        listed = trainers.list_trainers(ctx)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": trainer.name,
                        "host": trainer.host,
                        "pid": trainer.pid,
                        "started_at": trainer.started_at.isoformat(),
                        "last_beat_at": trainer.last_beat_at.isoformat(),
                        "last_beat_age_seconds": round(trainer.age_seconds, 3),
                        "model_id": trainer.model_id,
                        "model": trainer.model_name,
                        "restarts": trainer.restarts,
                    }
                    for trainer in listed
                ]
            )
        )
        return
    table = [("NAME", "HOST", "PID", "LAST BEAT", "MODEL", "RESTARTS")] + [
        (
            trainer.name,
            trainer.host,
            str(trainer.pid),
            f"{trainer.age_seconds:.1f} s ago",
            "-" if trainer.model_id is None else f"{trainer.model_id} {trainer.model_name or ''}",
            str(trainer.restarts),
        )
        for trainer in listed
    ]
    widths = [max(len(row[column]) for row in table) for column in range(len(table[0]))]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
