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

from ._chunks import as_rows, check_pairs
from ._errors import UnexpectedResponse

EXTENSIONS_HEADER = "X-SGT-Extensions"
BINARY_EXTENSION = "binary"
FLOAT32_BYTES = 4
_IS_LITTLE_ENDIAN = sys.byteorder == "little"


class Float32Matrix:
    """A matrix as the extension's bytes (little-endian float32, row-major), sliced into chunks
    without copying."""

    def __init__(self, wire: bytes | memoryview, rows: int, columns: int) -> None:
        self.wire = memoryview(wire).cast("B")
        self.rows = rows
        self.columns = columns

    def wire_bytes(self, start: int, stop: int) -> memoryview:
        """Rows `start` to `stop`, still the same buffer."""
        row_bytes = self.columns * FLOAT32_BYTES
        return self.wire[start * row_bytes : stop * row_bytes]


def float32_matrix(value: Any, *, field: str, error: type[Exception]) -> Float32Matrix:
    """`value` (rows of numbers, or an array with a float buffer) as float32; raises `error`
    naming the first bad row, as the JSON path would: ragged rows, non-numbers, NaN, infinity.

    A number beyond float32's range becomes infinity, as on the server, and is refused here.
    """
    matrix = _from_buffer(value)
    if matrix is None:
        matrix = _from_rows(as_rows(value, field=field, error=error), field=field, error=error)
    if not _is_finite(matrix.wire):
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


def run_body(
    fields: dict[str, Any], data: Float32Matrix, start: int, stop: int, *, field: str = "data"
) -> bytes:
    """A `run_sgt_model` body: `fields` and rows `start` to `stop` of `data` as `field`
    (`candidates` for `suggest_sgt_model_samples`)."""
    return _body_with(fields, field, _array_json(data, start, stop))


def upload_body(
    fields: dict[str, Any], inputs: Float32Matrix, labels: Float32Matrix, start: int, stop: int
) -> bytes:
    """An upload body: `fields` and rows `start` to `stop` as `{"inputs", "labels"}`."""
    parts = [
        b'{"inputs":',
        *_array_json(inputs, start, stop),
        b',"labels":',
        *_array_json(labels, start, stop),
        b"}",
    ]
    return _body_with(fields, "train_data", parts)


def _array_json(matrix: Float32Matrix, start: int, stop: int) -> list[bytes]:
    """The array object for rows `start` to `stop` as parts of JSON text, to be joined once."""
    encoded = base64.b64encode(matrix.wire_bytes(start, stop))
    # base64 needs no JSON escaping, so the (large) string is spliced in, not re-scanned.
    head = f'{{"dtype":"float32","shape":[{stop - start},{matrix.columns}],"base64":"'
    return [head.encode("ascii"), encoded, b'"}']


def _body_with(fields: dict[str, Any], value_name: str, parts: list[bytes]) -> bytes:
    """A JSON object of `fields` plus `value_name`, whose JSON text is the join of `parts`."""
    head = json.dumps(fields, separators=(",", ":"))[:-1]  # drop the closing brace
    comma = "," if fields else ""
    name = (comma + json.dumps(value_name) + ":").encode("utf-8")
    return b"".join([head.encode("utf-8"), name, *parts, b"}"])


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
    if view.format == "d":
        doubles = array("d")
        doubles.frombytes(view.cast("B"))
        # struct rounds to float32 as numpy does; a call per row keeps argument lists short.
        packer = struct.Struct(f"<{columns}f")
        step = range(0, rows * columns, columns) if columns else range(rows)
        packed = b"".join([packer.pack(*doubles[i : i + columns]) for i in step])
        return Float32Matrix(packed, rows, columns)
    if _IS_LITTLE_ENDIAN:
        return Float32Matrix(view, rows, columns)  # the caller's own bytes, not copied
    values = array("f")
    values.frombytes(view.cast("B"))
    values.byteswap()
    return Float32Matrix(values.tobytes(), rows, columns)


def _from_rows(rows: Sequence[Any], *, field: str, error: type[Exception]) -> Float32Matrix:
    columns = _row_length(rows[0], 0, field=field, error=error) if rows else 0
    packer = struct.Struct(f"<{columns}f")
    try:
        packed = b"".join([packer.pack(*row) for row in rows])
    except (TypeError, struct.error, OverflowError):
        # Ragged rows, rows of numpy scalars or array-likes, numbers beyond float32: find and
        # handle them one row at a time, off the fast path.
        packed = b"".join(
            [
                _pack_row(row, index, packer, field=field, error=error)
                for index, row in enumerate(rows)
            ]
        )
    return Float32Matrix(packed, len(rows), columns)


def _row_length(row: Any, index: int, *, field: str, error: type[Exception]) -> int:
    if isinstance(row, (str, bytes, dict)) or not hasattr(row, "__len__"):
        raise error(f"{field}[{index}] must be a list of numbers")
    return len(row)


def _pack_row(
    row: Any, index: int, packer: struct.Struct, *, field: str, error: type[Exception]
) -> bytes:
    size = _row_length(row, index, field=field, error=error)
    columns = packer.size // FLOAT32_BYTES
    if size != columns:
        raise error(f"{field}[{index}] has {size} values, {field}[0] has {columns}")
    if hasattr(row, "tolist"):
        row = row.tolist()
    plain = [value.tolist() if hasattr(value, "tolist") else value for value in row]
    try:
        return packer.pack(*plain)
    except OverflowError:
        values = array("f", plain)  # beyond float32 becomes infinity, refused afterwards
    except (TypeError, struct.error) as exc:
        raise error(f"{field}[{index}]: {exc}") from None
    if not _IS_LITTLE_ENDIAN:
        values.byteswap()
    return values.tobytes()


def _is_finite(wire: memoryview) -> bool:
    # NaN and infinity are the float32 values whose exponent bits are all ones, so their last
    # (little-endian) byte is 0x7F or 0xFF. Most matrices have no such byte there: two fast
    # scans; otherwise add them up (a sum of float32 values is finite exactly when each is).
    top_bytes = wire.tobytes()[3::4]  # a copy, then a stride: faster than a strided view
    if top_bytes.find(b"\x7f") < 0 and top_bytes.find(b"\xff") < 0:
        return True
    return math.isfinite(sum(_native_floats(wire)))


def _native_floats(wire: memoryview) -> Sequence[float]:
    if _IS_LITTLE_ENDIAN:
        return wire.cast("f")  # type: ignore[return-value]
    values = array("f")
    values.frombytes(wire)
    values.byteswap()
    return values


def _first_non_finite(matrix: Float32Matrix, *, field: str) -> str:
    for index in range(matrix.rows):
        if not math.isfinite(sum(_native_floats(matrix.wire_bytes(index, index + 1)))):
            return f"{field}[{index}] contains NaN or infinity; expected finite numbers"
    return f"{field} contains NaN or infinity; expected finite numbers"


def _unexpected(path: str, detail: str) -> UnexpectedResponse:
    return UnexpectedResponse(f"{path} {detail}", status_code=200)
