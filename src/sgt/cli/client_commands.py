"""Client commands of `sgt`: every endpoint from the shell, through `sgt.client`.

Credentials come from options or SGT_SECRET_ID / SGT_SECRET_KEY; the server from --url or SGT_URL.
`client_command` adds those options to a command and builds its `Client`, so each command only
says what it sends. Matrices are read and written by `matrix_files`. Imports `sgt.client` only,
never the server packages: these commands talk to a server, they do not open its database.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sgt.cli.matrix_files import read_matrix, write_matrix
from sgt.client import ApiError, Client, TransportError

DEFAULT_URL = "http://127.0.0.1:6006"
# Larger than the client's own default: a shell user sends whole files, rarely from a DCC.
DEFAULT_CHUNK_ROWS = 5000

Command = Callable[..., None]

_url_option = click.option(
    "--url",
    envvar="SGT_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Server address [env SGT_URL].",
)
_secret_id_option = click.option(
    "--secret-id", envvar="SGT_SECRET_ID", required=True, help="Your secret_id [env SGT_SECRET_ID]."
)
_secret_key_option = click.option(
    "--secret-key",
    envvar="SGT_SECRET_KEY",
    required=True,
    help="Your secret_key [env SGT_SECRET_KEY].",
)
_chunk_rows_option = click.option(
    "--chunk-rows",
    type=int,
    default=DEFAULT_CHUNK_ROWS,
    show_default=True,
    help="Rows sent per request.",
)
_app_option = click.option("--app", "app_name", required=True, help="The model's app_name.")


def named_model(command: Command) -> Command:
    """The NAME argument and the --app option that, with the caller, name one model."""
    return click.argument("name")(_app_option(command))


def client_command(
    *, credentials: bool = True, chunked: bool = False
) -> Callable[[Command], Command]:
    """Give a command the server options and pass it the `Client` they describe as `client`.

    The options are --url, then --secret-id and --secret-key unless `credentials` is false, and
    --chunk-rows first when `chunked`; they come last in --help. API and transport failures end
    the command with one line naming the exception, and exit status 1.
    """
    options = [_chunk_rows_option] if chunked else []
    options.append(_url_option)
    if credentials:
        options += [_secret_id_option, _secret_key_option]

    def decorate(command: Command) -> Command:
        @functools.wraps(command)
        def with_client(
            *,
            url: str,
            secret_id: str = "",
            secret_key: str = "",
            chunk_rows: int = DEFAULT_CHUNK_ROWS,
            **arguments: Any,
        ) -> None:
            try:
                client = Client(url, secret_id, secret_key, chunk_rows=chunk_rows)
            except ValueError as error:  # a --url without its scheme, a --chunk-rows below 1
                raise click.UsageError(str(error)) from None
            with _reported_errors():
                command(client=client, **arguments)

        decorated: Command = with_client
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


@contextmanager
def _reported_errors() -> Iterator[None]:
    """API and transport failures as one clean line and exit status 1."""
    try:
        yield
    except ApiError as error:
        raise click.ClickException(f"{type(error).__name__}: {error.message}") from None
    except TransportError as error:
        raise click.ClickException(f"{type(error).__name__}: {error}") from None


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2))


@click.group()
def model() -> None:
    """Create, list, delete and clone models."""


@model.command("create")
@named_model
@click.option("--in-size", type=int, required=True)
@click.option("--out-size", type=int, required=True)
@click.option("--type", "model_type", default="std", show_default=True)
@click.option("--public/--private", default=False, show_default=True)
@click.option("--client-data", default="null", help="Any JSON value.")
@client_command()
def create_model(
    client: Client,
    name: str,
    app_name: str,
    in_size: int,
    out_size: int,
    model_type: str,
    public: bool,
    client_data: str,
) -> None:
    """Create a model."""
    client.create_model(
        name,
        app_name,
        in_size=in_size,
        out_size=out_size,
        model_type=model_type,
        client_data=_parse_json(client_data),
        is_public=public,
    )
    click.echo(f"created '{name}' in app '{app_name}'")


@model.command("list")
@click.option("--public", "public_only", is_flag=True, help="Every user's public models.")
@client_command()
def list_models(client: Client, public_only: bool) -> None:
    """Print model records as JSON."""
    _echo_json(client.list_public_models() if public_only else client.list_my_models())


@model.command("delete")
@named_model
@client_command()
def delete_model(client: Client, name: str, app_name: str) -> None:
    """Delete a model with its weights and training data."""
    client.delete_model(name, app_name)
    click.echo(f"deleted '{name}' in app '{app_name}'")


@model.command("clone")
@click.argument("author")
@click.argument("name")
@click.argument("new_name")
@_app_option
@client_command()
def clone_model(client: Client, author: str, name: str, new_name: str, app_name: str) -> None:
    """Copy AUTHOR's model NAME (public, or your own) to yours as NEW_NAME."""
    client.clone_model(author, name, new_name, app_name)
    click.echo(f"cloned '{author}/{name}' to '{new_name}' in app '{app_name}'")


@model.command("set-client-data")
@named_model
@click.argument("client_data")
@client_command()
def set_client_data(client: Client, name: str, app_name: str, client_data: str) -> None:
    """Replace a model's client_data with the JSON value CLIENT_DATA."""
    client.update_client_data(name, app_name, _parse_json(client_data))
    click.echo("client_data updated")


@model.command("types")
@client_command(credentials=False)
def model_types(client: Client) -> None:
    """List the model types the server offers."""
    _echo_json(client.list_model_types())


@click.command("run")
@named_model
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write predictions to a .csv, .json or .npy file instead of stdout.",
)
@click.option(
    "--std",
    "return_std",
    is_flag=True,
    help='Answer {"mean", "std", "out_of_range"} as JSON (stdout or a .json --output): '
    "calibrated standard deviations, mean ± 1.645·std being a 90 % interval.",
)
@client_command(chunked=True)
def run_model(
    client: Client,
    name: str,
    app_name: str,
    inputs: Path,
    output: Path | None,
    return_std: bool,
) -> None:
    """Predict outputs for the rows of INPUTS (.csv, .json or .npy)."""
    if return_std and output is not None and output.suffix.lower() != ".json":
        raise click.BadParameter("with --std the output is a JSON object: use a .json file")
    rows = read_matrix(inputs)
    with _progress_bar(len(rows), "running") as progress:
        if not return_std:
            write_matrix(client.run(name, app_name, rows, progress=progress), output)
            return
        answer = client.run_with_std(name, app_name, rows, progress=progress)
    if output is None:
        _echo_json(answer)
    else:
        output.write_text(json.dumps(answer))
        click.echo(f"wrote {len(answer['mean'])} rows with std to {output}", err=True)


@click.command("suggest")
@named_model
@click.argument("candidates", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "count", type=int, required=True, help="How many rows to suggest.")
@client_command()
def suggest(client: Client, name: str, app_name: str, candidates: Path, count: int) -> None:
    """Print the indices (0-based) of the COUNT rows of CANDIDATES (.csv, .json or .npy) whose
    labels would most improve the model, as a JSON list."""
    _echo_json(client.suggest_samples(name, app_name, read_matrix(candidates), count))


@click.command("upload")
@named_model
@click.option(
    "--inputs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Input rows (.csv, .json or .npy).",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Label rows, one per input row.",
)
@client_command(chunked=True)
def upload(client: Client, name: str, app_name: str, inputs: Path, labels: Path) -> None:
    """Append training samples: row i of INPUTS with row i of LABELS."""
    input_rows, label_rows = read_matrix(inputs), read_matrix(labels)
    if len(input_rows) != len(label_rows):
        raise click.ClickException(
            f"{inputs} has {len(input_rows)} rows but {labels} has {len(label_rows)}"
        )
    with _progress_bar(len(input_rows), "uploading") as progress:
        client.upload_train_data(
            name, app_name, inputs=input_rows, labels=label_rows, progress=progress
        )
    click.echo(f"uploaded {len(input_rows)} samples", err=True)


@click.command("status")
@named_model
@client_command()
def status(client: Client, name: str, app_name: str) -> None:
    """Print the model's training status as JSON."""
    _echo_json(client.train_status(name, app_name))


@click.command("clear")
@named_model
@client_command()
def clear(client: Client, name: str, app_name: str) -> None:
    """Remove the model's training data (its weights stay)."""
    client.clear_train_data(name, app_name)
    click.echo("training data cleared")


@click.command("export")
@named_model
@click.option(
    "--out",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The .onnx file to write (docs/onnx.md).",
)
@client_command()
def export(client: Client, name: str, app_name: str, output: Path) -> None:
    """Write the model's served weights as one ONNX file, for use without a server."""
    graph = client.export_onnx(name, app_name, output)
    click.echo(
        f"wrote {output}: {graph['input']} float32 [n, {graph['in_size']}] -> "
        f"{graph['output']} float32 [n, {graph['out_size']}], opset {graph['opset']}"
    )


@click.command("check-auth")
@client_command()
def check_auth(client: Client) -> None:
    """Exit 0 when the credentials are valid now, 1 otherwise."""
    valid = client.check_auth()
    click.echo("valid" if valid else "invalid")
    sys.exit(0 if valid else 1)


@click.command("versions")
@named_model
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@client_command()
def versions(client: Client, name: str, app_name: str, as_json: bool) -> None:
    """List the model's kept versions, newest first; * marks the one served."""
    kept = client.list_versions(name, app_name)
    if as_json:
        _echo_json(kept)
        return
    if not kept:
        click.echo("no versions yet: the model has not converged", err=True)
        return
    click.echo(f"  {'version':>7}  {'created_at (UTC)':<19}  {'samples':>9}  val_loss")
    for entry in kept:
        mark = "*" if entry["served"] else " "
        val_loss = "-" if entry["val_loss"] is None else f"{entry['val_loss']:.6g}"
        click.echo(
            f"{mark} {entry['version']:>7}  {entry['created_at']:<19}  "
            f"{entry['sample_count']:>9}  {val_loss}"
        )


@click.command("rollback")
@named_model
@click.argument("version", type=click.IntRange(min=1))
@client_command()
def rollback(client: Client, name: str, app_name: str, version: int) -> None:
    """Serve VERSION of the model from now on (see `sgt versions`); the next upload trains
    from it."""
    client.rollback(name, app_name, version)
    click.echo(f"model '{name}' now serves version {version}")


CLIENT_COMMANDS = (
    model,
    run_model,
    suggest,
    upload,
    status,
    clear,
    check_auth,
    versions,
    rollback,
    export,
)


@contextmanager
def _progress_bar(total: int, label: str) -> Iterator[Callable[[int, int], None]]:
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        seen = 0

        def advance(done: int, _total: int) -> None:
            nonlocal seen
            bar.update(done - seen)
            seen = done

        yield advance


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
