"""Client commands of `sgt`: every endpoint from the shell, through `sgt.client`.

Credentials come from options or SGT_SECRET_ID / SGT_SECRET_KEY; the server from --url or SGT_URL.
Matrices are read from CSV, JSON or .npy files and written to stdout (JSON) or a file.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from sgt.client import ApiError, Client, TransportError

DEFAULT_URL = "http://127.0.0.1:6006"

url_option = click.option(
    "--url",
    envvar="SGT_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Server address [env SGT_URL].",
)
id_option = click.option(
    "--secret-id", envvar="SGT_SECRET_ID", required=True, help="Your secret_id [env SGT_SECRET_ID]."
)
key_option = click.option(
    "--secret-key",
    envvar="SGT_SECRET_KEY",
    required=True,
    help="Your secret_key [env SGT_SECRET_KEY].",
)
app_option = click.option("--app", "app_name", required=True, help="The model's app_name.")
chunk_option = click.option(
    "--chunk-rows", type=int, default=5000, show_default=True, help="Rows sent per request."
)


def _client(url: str, secret_id: str, secret_key: str, chunk_rows: int = 5000) -> Client:
    return Client(url, secret_id, secret_key, chunk_rows=chunk_rows)


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
@click.argument("name")
@app_option
@click.option("--in-size", type=int, required=True)
@click.option("--out-size", type=int, required=True)
@click.option("--type", "model_type", default="std", show_default=True)
@click.option("--public/--private", default=False, show_default=True)
@click.option("--client-data", default="null", help="Any JSON value.")
@url_option
@id_option
@key_option
def create_model(
    name: str,
    app_name: str,
    in_size: int,
    out_size: int,
    model_type: str,
    public: bool,
    client_data: str,
    url: str,
    secret_id: str,
    secret_key: str,
) -> None:
    """Create a model."""
    with _reported_errors():
        _client(url, secret_id, secret_key).create_model(
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
@url_option
@id_option
@key_option
def list_models(public_only: bool, url: str, secret_id: str, secret_key: str) -> None:
    """Print model records as JSON."""
    with _reported_errors():
        client = _client(url, secret_id, secret_key)
        _echo_json(client.list_public_models() if public_only else client.list_my_models())


@model.command("delete")
@click.argument("name")
@app_option
@url_option
@id_option
@key_option
def delete_model(name: str, app_name: str, url: str, secret_id: str, secret_key: str) -> None:
    """Delete a model with its weights and training data."""
    with _reported_errors():
        _client(url, secret_id, secret_key).delete_model(name, app_name)
    click.echo(f"deleted '{name}' in app '{app_name}'")


@model.command("clone")
@click.argument("author")
@click.argument("name")
@click.argument("new_name")
@app_option
@url_option
@id_option
@key_option
def clone_model(
    author: str, name: str, new_name: str, app_name: str, url: str, secret_id: str, secret_key: str
) -> None:
    """Copy AUTHOR's model NAME (public, or your own) to yours as NEW_NAME."""
    with _reported_errors():
        _client(url, secret_id, secret_key).clone_model(author, name, new_name, app_name)
    click.echo(f"cloned '{author}/{name}' to '{new_name}' in app '{app_name}'")


@model.command("set-client-data")
@click.argument("name")
@app_option
@click.argument("client_data")
@url_option
@id_option
@key_option
def set_client_data(
    name: str, app_name: str, client_data: str, url: str, secret_id: str, secret_key: str
) -> None:
    """Replace a model's client_data with the JSON value CLIENT_DATA."""
    with _reported_errors():
        _client(url, secret_id, secret_key).update_client_data(
            name, app_name, _parse_json(client_data)
        )
    click.echo("client_data updated")


@model.command("types")
@url_option
def model_types(url: str) -> None:
    """List the model types the server offers."""
    with _reported_errors():
        _echo_json(Client(url, "", "").list_model_types())


@click.command("run")
@click.argument("name")
@app_option
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write predictions to a .csv, .json or .npy file instead of stdout.",
)
@chunk_option
@url_option
@id_option
@key_option
def run_model(
    name: str,
    app_name: str,
    inputs: Path,
    output: Path | None,
    chunk_rows: int,
    url: str,
    secret_id: str,
    secret_key: str,
) -> None:
    """Predict outputs for the rows of INPUTS (.csv, .json or .npy)."""
    rows = read_matrix(inputs)
    with _reported_errors(), _progress_bar(len(rows), "running") as progress:
        predictions = _client(url, secret_id, secret_key, chunk_rows).run(
            name, app_name, rows, progress=progress
        )
    write_matrix(predictions, output)


@click.command("upload")
@click.argument("name")
@app_option
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
@chunk_option
@url_option
@id_option
@key_option
def upload(
    name: str,
    app_name: str,
    inputs: Path,
    labels: Path,
    chunk_rows: int,
    url: str,
    secret_id: str,
    secret_key: str,
) -> None:
    """Append training samples: row i of INPUTS with row i of LABELS."""
    input_rows, label_rows = read_matrix(inputs), read_matrix(labels)
    if len(input_rows) != len(label_rows):
        raise click.ClickException(
            f"{inputs} has {len(input_rows)} rows but {labels} has {len(label_rows)}"
        )
    with _reported_errors(), _progress_bar(len(input_rows), "uploading") as progress:
        _client(url, secret_id, secret_key, chunk_rows).upload_train_data(
            name, app_name, inputs=input_rows, labels=label_rows, progress=progress
        )
    click.echo(f"uploaded {len(input_rows)} samples", err=True)


@click.command("status")
@click.argument("name")
@app_option
@url_option
@id_option
@key_option
def status(name: str, app_name: str, url: str, secret_id: str, secret_key: str) -> None:
    """Print the model's training status as JSON."""
    with _reported_errors():
        _echo_json(_client(url, secret_id, secret_key).train_status(name, app_name))


@click.command("clear")
@click.argument("name")
@app_option
@url_option
@id_option
@key_option
def clear(name: str, app_name: str, url: str, secret_id: str, secret_key: str) -> None:
    """Remove the model's training data (its weights stay)."""
    with _reported_errors():
        _client(url, secret_id, secret_key).clear_train_data(name, app_name)
    click.echo("training data cleared")


@click.command("check-auth")
@url_option
@id_option
@key_option
def check_auth(url: str, secret_id: str, secret_key: str) -> None:
    """Exit 0 when the credentials are valid now, 1 otherwise."""
    with _reported_errors():
        valid = _client(url, secret_id, secret_key).check_auth()
    click.echo("valid" if valid else "invalid")
    sys.exit(0 if valid else 1)


CLIENT_COMMANDS = (model, run_model, upload, status, clear, check_auth)


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


def read_matrix(path: Path) -> list[list[float]]:
    """Rows of numbers from a .npy, .json (list of rows) or .csv file (header lines skipped)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        array = np.load(path, allow_pickle=False)
        return [list(map(float, row)) for row in np.atleast_2d(array).tolist()]
    if suffix == ".json":
        value = json.loads(path.read_text())
        if not isinstance(value, list):
            raise click.ClickException(f"{path} must hold a JSON list of rows")
        return value
    rows: list[list[float]] = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            try:
                rows.append([float(cell) for cell in row])
            except ValueError:
                if rows:
                    raise click.ClickException(f"{path}:{number}: not a row of numbers") from None
    return rows


def write_matrix(rows: list[list[float]], path: Path | None) -> None:
    """Rows to stdout as JSON, or to a .npy, .json or .csv file."""
    if path is None:
        click.echo(json.dumps(rows))
        return
    suffix = path.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        np.save(path, np.asarray(rows, dtype=np.float32))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    click.echo(f"wrote {len(rows)} rows to {path}", err=True)
