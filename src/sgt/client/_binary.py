"""The binary extension (docs/binary.md) on the client side: matrices to little-endian float32
bytes for the wire, request bodies that carry them as base64, and answers back to rows.

Standard library only (`array`, `base64`, `struct`), relative imports only; numpy is never
imported, but an array exposing a C-contiguous float32 or float64 buffer (numpy does) is read
through that buffer instead of one Python float at a time.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import math
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._chunks import as_rows, check_pairs, check_row_lengths
from ._errors import UnexpectedResponse

EXTENSIONS_HEADER = "X-SGT-Extensions"
BINARY_EXTENSION = "binary"
FLOAT32_BYTES = 4
_IS_LITTLE_ENDIAN = sys.byteorder == "little"


class Float32Matrix:
    """A matrix as native-order float32 values, flat and row-major, ready to slice into chunks."""

    def __init__(self, values: array, rows: int, columns: int) -> None:  # type: ignore[type-arg]
        self.values = values
        self.rows = rows
        self.columns = columns

    def wire_bytes(self, start: int, stop: int) -> bytes:
        """Rows `start` to `stop` as the extension's bytes: little-endian, row-major."""
        chunk = self.values[start * self.columns : stop * self.columns]
        if not _IS_LITTLE_ENDIAN:
            chunk.byteswap()
        return chunk.tobytes()


def float32_matrix(value: Any, *, field: str, error: type[Exception]) -> Float32Matrix:
    """`value` (rows of numbers, or an array with a float buffer) as float32; raises `error`
    naming the first bad row, as the JSON path would: ragged rows, non-numbers, NaN, infinity.

    A number beyond float32's range becomes infinity, as on the server, and is refused here.
    """
    matrix = _from_buffer(value)
    if matrix is None:
        rows = as_rows(value, field=field, error=error)
        check_row_lengths(rows, field=field, error=error)
        matrix = _from_rows(rows, field=field, error=error)
    # A sum of float32 values cannot overflow a double, so it is finite exactly when every
    # value is: one C loop instead of a Python call per value.
    if not math.isfinite(sum(matrix.values)):
        raise error(_first_non_finite(matrix, field=field))
    return matrix


def train_matrices(
    inputs: Any, labels: Any, pairs: Any, *, error: type[Exception]
) -> tuple[Float32Matrix, Float32Matrix]:
    """`upload_train_data`'s arguments as two matrices of equal row counts; errors name the
    row in the whole batch, as `inputs[i]` or `labels[i]` (also for pairs)."""
    if pairs is not None:
        if inputs is not None or labels is not None:
            raise ValueError("pass either inputs and labels, or pairs, not both")
        rows = as_rows(pairs, field="pairs", error=error)
        check_pairs(rows, error=error)
        inputs, labels = [pair[0] for pair in rows], [pair[1] for pair in rows]
    elif inputs is None or labels is None:
        raise ValueError("pass inputs and labels, or pairs")
    inputs_matrix = float32_matrix(inputs, field="inputs", error=error)
    labels_matrix = float32_matrix(labels, field="labels", error=error)
    if inputs_matrix.rows != labels_matrix.rows:
        raise error(f"inputs has {inputs_matrix.rows} rows but labels has {labels_matrix.rows}")
    return inputs_matrix, labels_matrix


def array_json(matrix: Float32Matrix, start: int, stop: int) -> bytes:
    """The array object for rows `start` to `stop`, already encoded as JSON."""
    encoded = base64.b64encode(matrix.wire_bytes(start, stop))
    # base64 needs no JSON escaping, so the (large) string is spliced in, not re-scanned.
    head = f'{{"dtype":"float32","shape":[{stop - start},{matrix.columns}],"base64":"'
    return b"".join([head.encode("ascii"), encoded, b'"}'])


def body_with_arrays(fields: dict[str, Any], arrays: Sequence[tuple[str, bytes]]) -> bytes:
    """A JSON object of `fields` plus the already encoded values of `arrays` (name, JSON)."""
    head = json.dumps(fields, separators=(",", ":"))[:-1]  # drop the closing brace
    parts = [head.encode("utf-8")]
    for index, (name, encoded) in enumerate(arrays):
        comma = "," if fields or index else ""
        parts.append((comma + json.dumps(name) + ":").encode("utf-8"))
        parts.append(encoded)
    parts.append(b"}")
    return b"".join(parts)


def rows_of_answer(answer: Any, *, rows: int, path: str) -> list[list[float]]:
    """A binary answer `{"dtype", "shape", "base64"}` of `rows` rows as lists of floats.

    Raises `UnexpectedResponse` when it is not the array object the extension promises.
    """
    if not isinstance(answer, dict) or answer.get("dtype") != "float32":
        raise _unexpected(path, f"answered {type(answer).__name__}, expected a float32 array")
    shape, text = answer.get("shape"), answer.get("base64")
    is_shape = isinstance(shape, list) and len(shape) == 2
    if not is_shape or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise _unexpected(path, f"answered an array of shape {shape!r}")
    count, columns = shape
    if count != rows:
        raise _unexpected(path, f"answered {count} rows for {rows}")
    try:
        raw = base64.b64decode(text if isinstance(text, str) else "-", validate=True)
    except (binascii.Error, ValueError):
        raise _unexpected(path, "answered an array whose base64 is not valid") from None
    if len(raw) != count * columns * FLOAT32_BYTES:
        raise _unexpected(path, f"answered {len(raw)} bytes for shape [{count}, {columns}]")
    if count == 0 or columns == 0:
        return [[] for _ in range(count)]
    values = array("f")
    values.frombytes(raw)
    if not _IS_LITTLE_ENDIAN:
        values.byteswap()
    with _collector_paused():
        return memoryview(values).cast("B").cast("f", [count, columns]).tolist()  # type: ignore[no-any-return]


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Building 50,000 row lists triggers dozens of cyclic collections that find nothing (none
    # of it is garbage yet): most of the decoding time. Re-enabled only if it was enabled.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _from_buffer(value: Any) -> Float32Matrix | None:
    """A C-contiguous 2-D float32 or float64 buffer (numpy) read without Python floats; None
    for anything else, which is then read row by row."""
    if isinstance(value, (list, tuple, bytes, bytearray, str)):
        return None
    try:
        view = memoryview(value)
    except TypeError:
        return None
    if view.ndim != 2 or not view.c_contiguous or view.format not in ("f", "d"):
        return None
    rows, columns = view.shape  # type: ignore[misc]
    values = array(view.format)
    values.frombytes(view.cast("B"))
    if view.format == "d":
        values = _to_float32(values, rows, columns)
    return Float32Matrix(values, rows, columns)


def _to_float32(doubles: array, rows: int, columns: int) -> array:  # type: ignore[type-arg]
    # struct rounds to float32 as numpy does; one call per row keeps the argument lists short.
    packer = struct.Struct(f"={columns}f")
    packed = b"".join([packer.pack(*doubles[i * columns : (i + 1) * columns]) for i in range(rows)])
    values = array("f")
    values.frombytes(packed)
    return values


def _from_rows(rows: Sequence[Any], *, field: str, error: type[Exception]) -> Float32Matrix:
    columns = len(rows[0]) if rows else 0
    packer = struct.Struct(f"={columns}f")
    parts = []
    for index, row in enumerate(rows):
        try:
            parts.append(packer.pack(*row))
        except (TypeError, struct.error, OverflowError):
            parts.append(_pack_slowly(row, index, field=field, error=error))
    values = array("f")
    values.frombytes(b"".join(parts))
    return Float32Matrix(values, len(rows), columns)


def _pack_slowly(row: Any, index: int, *, field: str, error: type[Exception]) -> bytes:
    # Rows of numpy scalars, array-like rows, or numbers beyond float32 (which array("f")
    # turns into infinity, refused later as the server would).
    if hasattr(row, "tolist"):
        row = row.tolist()
    plain = [value.tolist() if hasattr(value, "tolist") else value for value in row]
    try:
        return array("f", plain).tobytes()
    except TypeError as exc:
        raise error(f"{field}[{index}]: {exc}") from None


def _first_non_finite(matrix: Float32Matrix, *, field: str) -> str:
    columns = matrix.columns
    for index in range(matrix.rows):
        row = matrix.values[index * columns : (index + 1) * columns]
        if not math.isfinite(sum(row)):
            return f"{field}[{index}] contains NaN or infinity; expected finite numbers"
    return f"{field} contains NaN or infinity; expected finite numbers"


def _unexpected(path: str, detail: str) -> UnexpectedResponse:
    return UnexpectedResponse(f"{path} {detail}", status_code=200)
