"""Validation of `data` (inputs to run) and `train_data` (pairs to learn): shape and finite numbers.

Callers hand in lists already type-checked as numbers by the request decoder (or numpy arrays
from the binary path); what is left is geometry and finiteness, checked with numpy in bulk so a
50,000-row request costs milliseconds. Errors name the row and column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgt.errors import InvalidSamples

FLOAT32_LE = np.dtype("<f4")


def to_input_matrix(
    rows: Sequence[Sequence[float]] | np.ndarray, *, in_size: int, field: str = "data"
) -> np.ndarray:
    """Rows as a C-contiguous float32 (n, in_size) array; raises InvalidSamples naming the cell."""
    matrix = _as_float32_matrix(rows, field=field)
    if len(matrix) == 0:
        return np.zeros((0, in_size), dtype=np.float32)
    if matrix.shape[1] != in_size:
        raise InvalidSamples(
            f"{field}[0] has {matrix.shape[1]} values, the model expects in_size={in_size}"
        )
    _require_finite(matrix, field=field)
    return matrix


def to_training_arrays(
    pairs: Sequence[Sequence[Sequence[float]]] | tuple[np.ndarray, np.ndarray],
    *,
    in_size: int,
    out_size: int,
    field: str = "train_data",
) -> tuple[np.ndarray, np.ndarray]:
    """`[input, label]` pairs as float32 arrays (n, in_size) and (n, out_size)."""
    if isinstance(pairs, tuple):
        inputs, labels = pairs
    else:
        for index, pair in enumerate(pairs):
            if len(pair) != 2:
                raise InvalidSamples(
                    f"{field}[{index}] must be a pair [input, label], got {len(pair)} items"
                )
        inputs = _as_float32_matrix([pair[0] for pair in pairs], field=f"{field}[*][0]")
        labels = _as_float32_matrix([pair[1] for pair in pairs], field=f"{field}[*][1]")
    if len(inputs) != len(labels):
        raise InvalidSamples(f"{field} has {len(inputs)} inputs but {len(labels)} labels")
    if len(inputs) == 0:
        return (np.zeros((0, in_size), np.float32), np.zeros((0, out_size), np.float32))
    for matrix, width, what, part in (
        (inputs, in_size, "in_size", 0),
        (labels, out_size, "out_size", 1),
    ):
        if matrix.ndim != 2 or matrix.shape[1] != width:
            got = matrix.shape[1] if matrix.ndim == 2 else 0
            raise InvalidSamples(
                f"{field}[0][{part}] has {got} values, the model expects {what}={width}"
            )
        _require_finite(matrix, field=f"{field}[*][{part}]")
    return inputs, labels


def from_float32_bytes(raw: bytes | bytearray, shape: Sequence[int], *, field: str) -> np.ndarray:
    """A (rows, columns) matrix viewing `raw`, little-endian float32 row-major; no copy.

    Raises InvalidSamples when the shape is not two counts or does not match the byte length.
    A `bytearray` gives a writable array; `bytes` a read-only one.
    """
    if len(shape) != 2 or any(count < 0 for count in shape):
        raise InvalidSamples(
            f"{field}.shape must be [rows, columns] of counts >= 0, got {list(shape)}"
        )
    rows, columns = shape
    if rows * columns * FLOAT32_LE.itemsize != len(raw):
        raise InvalidSamples(
            f"{field}.base64 decodes to {len(raw):,} bytes, but shape [{rows}, {columns}] of "
            f"float32 needs {rows * columns * FLOAT32_LE.itemsize:,}"
        )
    matrix = np.frombuffer(raw, dtype=FLOAT32_LE).reshape(rows, columns)
    return matrix if FLOAT32_LE == np.float32 else matrix.astype(np.float32)


def to_float32_rows(rows: Sequence[Sequence[float]] | np.ndarray, *, field: str) -> np.ndarray:
    """Rows of numbers as a C-contiguous float32 matrix, before any check against a model."""
    return _as_float32_matrix(rows, field=field)


def _as_float32_matrix(rows: Sequence[Sequence[float]] | np.ndarray, *, field: str) -> np.ndarray:
    if isinstance(rows, np.ndarray):
        matrix = rows
    else:
        try:
            # Numbers beyond float32 become inf here and are reported by _require_finite.
            with np.errstate(over="ignore"):
                matrix = np.array(rows, dtype=np.float32)
        except (ValueError, TypeError):
            raise InvalidSamples(_describe_ragged(rows, field=field)) from None
    if matrix.ndim == 1 and matrix.size == 0:
        return matrix.reshape(0, 0)
    if matrix.ndim != 2:
        raise InvalidSamples(
            f"{field} must be a 2-D array of numbers, got {matrix.ndim} dimensions"
        )
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _describe_ragged(rows: Sequence[Sequence[float]], *, field: str) -> str:
    if not isinstance(rows, Sequence) or isinstance(rows, str | bytes):
        return f"{field} must be a list of rows"
    width = None
    for index, row in enumerate(rows):
        if not isinstance(row, Sequence) or isinstance(row, str | bytes):
            return f"{_cell_name(field, index)} must be a list of numbers"
        if width is None:
            width = len(row)
        elif len(row) != width:
            name = _cell_name(field, index)
            return f"{name} has {len(row)} values, row 0 has {width}: rows must be equal"
    return f"{field} must be a 2-D array of finite numbers"


def _require_finite(matrix: np.ndarray, *, field: str) -> None:
    finite = np.isfinite(matrix)
    if finite.all():
        return
    row, column = (int(i) for i in np.argwhere(~finite)[0])
    value = matrix[row, column]
    what = "NaN" if np.isnan(value) else "infinite or beyond float32 range"
    name = _cell_name(field, row)
    raise InvalidSamples(f"{name}[{column}] is {what}; every value must be a finite number")


def _cell_name(field: str, row: int) -> str:
    """`data[3]`, or `train_data[3][0]` where the field names a part of each pair."""
    return field.replace("[*]", f"[{row}]", 1) if "[*]" in field else f"{field}[{row}]"
