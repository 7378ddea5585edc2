"""`sgt admin`: migrate the schema and manage users without HTTP."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import click

from sgt.config import load_settings
from sgt.services.context import ServiceContext, open_context


def _context() -> ServiceContext:
    return open_context(load_settings())


def _parse_end_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    from sgt.services.users import parse_end_time

    try:
        return parse_end_time(value)
    except ValueError:
        raise click.BadParameter("expected 'YYYY-MM-DD HH:MM:SS' (UTC)") from None


@click.group()
def admin() -> None:
    """Administration on the configured database (SGT_DATABASE_URL / SGT_DATA_DIR)."""


@admin.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    ctx = _context()  # opening the context migrates
    ctx.close()
    click.echo("schema is up to date")


@admin.command("system-key")
def system_key() -> None:
    """Print the system key (from configuration, or generated into the data directory)."""
    ctx = _context()
    click.echo(ctx.system_key)
    ctx.close()


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
    from sgt.services.users import put_user

    key = secret_key or secrets.token_urlsafe(24)
    ctx = _context()
    put_user(ctx, secret_id=secret_id, secret_key=key, doc=doc, end_time=_parse_end_time(end_time))
    ctx.close()
    click.echo(key)


@user.command("rotate")
@click.argument("secret_id")
@click.option("--key", "secret_key", help="The new key; generated when omitted.")
def rotate_user(secret_id: str, secret_key: str | None) -> None:
    """Give a user a new key (the old one stops working) and print it."""
    from sgt.services.users import rotate_user_key

    key = secret_key or secrets.token_urlsafe(24)
    ctx = _context()
    found = rotate_user_key(ctx, secret_id=secret_id, secret_key=key)
    ctx.close()
    if not found:
        raise click.ClickException(f"no user '{secret_id}'")
    click.echo(key)


@user.command("expire")
@click.argument("secret_id")
@click.option("--at", "end_time", help="When the key stops working, 'YYYY-MM-DD HH:MM:SS' UTC.")
@click.option("--never", is_flag=True, help="Remove the expiry.")
def expire_user(secret_id: str, end_time: str | None, never: bool) -> None:
    """Set when a user's key stops working (default: now)."""
    from sgt.services.users import expire_user as set_expiry

    when = (
        None
        if never
        else (_parse_end_time(end_time) or datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    )
    ctx = _context()
    found = set_expiry(ctx, secret_id, when)
    ctx.close()
    if not found:
        raise click.ClickException(f"no user '{secret_id}'")
    click.echo(f"{secret_id}: {'never expires' if when is None else f'expires {when} UTC'}")


@user.command("list")
def list_all_users() -> None:
    """List users: secret_id, expiry, doc."""
    from sgt.services.users import list_users

    ctx = _context()
    for secret_id, doc, end_time in list_users(ctx):
        click.echo(f"{secret_id}\t{end_time or '-'}\t{doc}")
    ctx.close()
