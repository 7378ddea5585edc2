"""The `sgt` click group: serve, worker, admin. Commands parse options and call one function."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from sgt import __version__
from sgt.cli.admin import admin
from sgt.cli.client_commands import CLIENT_COMMANDS
from sgt.config import load_settings


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"
    )


def _overrides(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def storage_and_device_options(command: Callable[..., None]) -> Callable[..., None]:
    """--data-dir, --database-url and --device, shared by serve and worker."""
    for option in reversed(
        (
            click.option(
                "--data-dir",
                type=click.Path(file_okay=False),
                help="Data directory [env SGT_DATA_DIR; default ./sgt-data].",
            ),
            click.option(
                "--database-url", help="Database URL [env SGT_DATABASE_URL; default embedded]."
            ),
            click.option(
                "--device",
                type=click.Choice(["cpu", "cuda"]),
                help="Torch device [env SGT_DEVICE, sgt_device; default cpu].",
            ),
        )
    ):
        command = option(command)
    return command


@click.group()
@click.version_option(__version__, prog_name="sgt")
def cli() -> None:
    """SGT: example data in, trained models out, behind a JSON HTTP API."""


@cli.command()
@click.option("--host", help="Listen address [env SGT_HOST, sgt_host; default 127.0.0.1].")
@click.option("--port", type=int, help="Listen port [env SGT_PORT, sgt_port; default 6006].")
@click.option(
    "--workers", "api_workers", type=int, help="API processes [env SGT_API_WORKERS; default 1]."
)
@click.option(
    "--trainer/--no-trainer",
    "embedded_trainer",
    default=None,
    help="Start one trainer process beside the API [env SGT_EMBEDDED_TRAINER; on].",
)
@storage_and_device_options
def serve(**options: Any) -> None:
    """Start the API (and, by default, one embedded trainer)."""
    from sgt.cli.processes import serve_forever as run_server

    settings = load_settings(**_overrides(**options))
    _setup_logging(settings.log_level)
    run_server(settings)


@cli.command()
@storage_and_device_options
@click.option(
    "--threads",
    "torch_threads",
    type=int,
    help="Torch threads [env SGT_TORCH_THREADS; default: torch decides].",
)
# Set by the supervisor in `sgt serve`: how often it restarted its trainer, shown in its row.
@click.option("--restarts", type=int, default=0, hidden=True)
def worker(restarts: int, **options: Any) -> None:
    """Run one trainer only (no API), until SIGINT or SIGTERM."""
    from sgt.training.worker import run_worker

    settings = load_settings(**_overrides(**options))
    _setup_logging(settings.log_level)
    run_worker(settings, restarts=restarts)


cli.add_command(admin)
for command in CLIENT_COMMANDS:
    cli.add_command(command)
