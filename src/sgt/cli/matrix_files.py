"""Matrices the client commands read and write: .csv, .json (a list of rows) or .npy files.

Imports click and, only for .npy, numpy; never the server packages.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click


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
