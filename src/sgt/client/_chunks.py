"""Big batches: turn `data` / `train_data` into rows, check their shape, split them into chunks
and encode each chunk's body once.

Standard library only: arrays are read through `.tolist()`, so numpy is never imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any


def as_rows(value: Any, *, field: str, error: type[Exception]) -> list[Any]:
    """Return `value` as a list of rows; `.tolist()` (numpy, array.array) is used when present.

    Rows themselves may stay arrays: `encode_body` converts them. Raises `error` when `value`
    is not a sequence of rows.
    """
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return value
    if isinstance(value, (str, bytes, dict)) or value is None:
        raise error(f"{field} must be a list of rows, got {type(value).__name__}")
    try:
        return list(value)
    except TypeError:
        raise error(f"{field} must be a list of rows, got {type(value).__name__}") from None


def check_row_lengths(rows: Sequence[Any], *, field: str, error: type[Exception]) -> None:
    """Raise `error` unless every row is a list-like of the first row's length.

    Checked before anything is sent, so a ragged batch never leaves a partial upload and the
    message's row index counts from the start of the whole batch, not of a chunk.
    """
    expected = -1
    for index, row in enumerate(rows):
        if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__len__"):
            raise error(f"{field}[{index}] must be a list of numbers")
        if expected < 0:
            expected = len(row)
        elif len(row) != expected:
            raise error(f"{field}[{index}] has {len(row)} values, {field}[0] has {expected}")


def pair_rows(
    inputs: Sequence[Any], labels: Sequence[Any], *, error: type[Exception]
) -> list[list[Any]]:
    """Zip inputs and labels into the wire's `[input, label]` pairs, checking their shapes."""
    if len(inputs) != len(labels):
        raise error(f"inputs has {len(inputs)} rows but labels has {len(labels)}")
    check_row_lengths(inputs, field="inputs", error=error)
    check_row_lengths(labels, field="labels", error=error)
    return [[row, label] for row, label in zip(inputs, labels)]  # noqa: B905 (3.10+)


def check_pairs(pairs: Sequence[Any], *, error: type[Exception]) -> None:
    """Raise `error` unless each pair is `[input, label]` and inputs and labels agree in length."""
    for index, pair in enumerate(pairs):
        if isinstance(pair, (str, bytes, dict)) or not hasattr(pair, "__len__") or len(pair) != 2:
            raise error(f"train_data[{index}] must be an [input, label] pair")
    check_row_lengths([pair[0] for pair in pairs], field="train_data[*][0]", error=error)
    check_row_lengths([pair[1] for pair in pairs], field="train_data[*][1]", error=error)


def split_rows(rows: Sequence[Any], chunk_rows: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """Yield `(start, chunk)` in order; an empty batch still yields one empty chunk, so it makes
    the same single request (and gets the same auth and not-found errors) as it would unsplit."""
    if not rows:
        yield 0, rows
        return
    for start in range(0, len(rows), chunk_rows):
        yield start, rows[start : start + chunk_rows]


def chunk_bounds(rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """`(start, stop)` of each chunk of `rows` rows; none is one empty chunk, as in `split_rows`."""
    return [(start, min(start + chunk_rows, rows)) for start in range(0, max(rows, 1), chunk_rows)]


def encode_body(body: dict[str, Any], *, field: str, error: type[Exception]) -> bytes:
    """Encode a request body in one `json.dumps` call, arrays converted through `.tolist()`.

    NaN and infinity have no JSON spelling and the contract wants finite numbers, so they raise
    `error` naming the first offending row of `body[field]`.
    """
    try:
        return _dumps(body).encode("utf-8")
    except (ValueError, TypeError) as exc:
        raise error(_describe_bad_row(body.get(field, []), field=field, cause=exc)) from None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_to_json)


def _to_json(value: Any) -> Any:
    # Only called for what json cannot encode: numpy arrays and scalars, array.array.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not a JSON number or list")


def _describe_bad_row(rows: Any, *, field: str, cause: Exception) -> str:
    # The error path only: find the row again, one row at a time.
    for index, row in enumerate(rows if isinstance(rows, list) else []):
        try:
            _dumps(row)
        except ValueError:
            return f"{field}[{index}] contains NaN or infinity; expected finite numbers"
        except TypeError as exc:
            return f"{field}[{index}]: {exc}"
    return f"{field} cannot be encoded as JSON: {cause}"
