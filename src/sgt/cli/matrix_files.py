"""Matrices the client commands read and write: .csv, .json (a list of rows) or .npy files.

Imports click and, only for .npy, numpy; never the server packages.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click


def read_matrix(path: Path) -> list[list[float]]:
    """Rows of numbers from a .npy, .json (list of rows) or .csv file (one header line allowed)."""
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
    return _read_csv(path)


def _read_csv(path: Path) -> list[list[float]]:
    """Rows of numbers; the first non-blank line may be a header (no cell a number), and any
    other cell that is not a number is an error naming its line and column."""
    rows: list[list[float]] = []
    seen_first_line = False
    # utf-8-sig: spreadsheets start their CSV files with a byte order mark.
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or all(not cell.strip() for cell in row):
                continue
            values = [_number_or_none(cell) for cell in row]
            is_header = not seen_first_line and all(value is None for value in values)
            seen_first_line = True
            if is_header:
                continue
            for column, (cell, value) in enumerate(zip(row, values, strict=True), start=1):
                if value is None:
                    raise click.ClickException(
                        f"{path}: line {number}, column {column}: {cell!r} is not a number "
                        "(only the first line may be a header)"
                    )
            rows.append([value for value in values if value is not None])
    return rows


def _number_or_none(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


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
