"""The binary extension's arrays without HTTP: decoding, checks, and encoding back."""

from __future__ import annotations

import base64

import msgspec
import numpy as np
import pytest

from sgt.api.binary import array_object, matrix_of, pairs_of
from sgt.api.body import decode_body
from sgt.api.schemas import Float32Array, RunModelRequest, TrainArrays
from sgt.domain.samples import from_float32_bytes
from sgt.errors import InvalidRequest, InvalidSamples


def test_bytes_become_a_writable_float32_view_without_copy() -> None:
    values = np.arange(6, dtype="<f4").reshape(2, 3)
    raw = bytearray(values.tobytes())
    matrix = from_float32_bytes(raw, [2, 3], field="data")
    np.testing.assert_array_equal(matrix, values)
    assert matrix.dtype == np.float32 and matrix.flags.writeable
    matrix[0, 0] = 7.0
    assert raw[:4] == np.float32(7.0).tobytes()


@pytest.mark.parametrize(
    ("shape", "size", "named"),
    [
        ([2, 3], 20, "needs 24"),
        ([6], 24, "must be [rows, columns]"),
        ([1, 2, 3], 24, "must be [rows, columns]"),
        ([-2, -3], 24, "must be [rows, columns]"),
    ],
)
def test_shape_and_length_must_agree(shape: list[int], size: int, named: str) -> None:
    with pytest.raises(InvalidSamples, match=r"^data\.") as raised:
        from_float32_bytes(bytearray(size), shape, field="data")
    assert named in raised.value.message


def test_zero_rows_are_an_empty_matrix() -> None:
    assert from_float32_bytes(bytearray(), [0, 5], field="data").shape == (0, 5)


def test_array_object_round_trips_through_msgspec_json() -> None:
    values = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    encoded = msgspec.json.encode(array_object(values))
    plain = msgspec.json.decode(encoded)
    assert plain["dtype"] == "float32" and plain["shape"] == [4, 3]
    np.testing.assert_array_equal(
        np.frombuffer(base64.b64decode(plain["base64"]), "<f4").reshape(4, 3), values
    )
    back = msgspec.json.decode(encoded, type=Float32Array)
    np.testing.assert_array_equal(matrix_of(back, field="data"), values)


def test_nested_lists_still_become_matrices() -> None:
    matrix = matrix_of([[1.0, 2.0], [3.0, 4.0]], field="data")
    assert matrix.dtype == np.float32 and matrix.shape == (2, 2)
    with pytest.raises(InvalidSamples, match=r"data\[1\] has 1 values"):
        matrix_of([[1.0, 2.0], [3.0]], field="data")


def test_train_arrays_become_inputs_and_labels() -> None:
    x = np.ones((3, 2), np.float32)
    y = np.zeros((3, 1), np.float32)
    arrays = TrainArrays(inputs=array_object(x), labels=array_object(y))
    inputs, labels = pairs_of(arrays)  # type: ignore[misc]
    np.testing.assert_array_equal(inputs, x)
    np.testing.assert_array_equal(labels, y)
    pairs = [([1.0, 2.0], [3.0])]
    assert pairs_of(pairs) is pairs


def body(data: str, extra: str = "") -> bytes:
    return f'{{"name": "m", "app_name": "a", "data": {data}{extra}}}'.encode()


@pytest.mark.parametrize(
    ("data", "error", "named"),
    [
        ('{"dtype": "float32", "shape": [1, 1], "base64": "!!"}', InvalidSamples, "data.base64"),
        ('{"dtype": "int8", "shape": [1, 1], "base64": "AAAAAA=="}', InvalidSamples, "data.dtype"),
        ('{"shape": [1, 1], "base64": "AAAAAA=="}', InvalidSamples, "data.dtype is required"),
        ('"AAAAAA=="', InvalidSamples, "data"),
    ],
)
def test_decoding_names_the_binary_field(data: str, error: type[Exception], named: str) -> None:
    with pytest.raises(error) as raised:
        decode_body(body(data), RunModelRequest, max_text_chars=256)
    assert named in str(raised.value)


def test_a_missing_data_field_is_still_a_request_exception() -> None:
    with pytest.raises(InvalidRequest, match="data is required"):
        decode_body(b'{"name": "m", "app_name": "a"}', RunModelRequest, max_text_chars=256)


def test_response_format_defaults_to_json() -> None:
    decoded = decode_body(body("[[1.0]]"), RunModelRequest, max_text_chars=256)
    assert decoded.response_format == "json"
    with pytest.raises(InvalidRequest, match="response_format"):
        decode_body(
            body("[[1.0]]", ', "response_format": "xml"'), RunModelRequest, max_text_chars=9
        )


def test_decoding_a_large_body_leaves_the_collector_as_it_was() -> None:
    import gc

    rows = ",".join(["[" + ",".join(["0.5"] * 64) + "]"] * 8000)
    large = body(f"[{rows}]")
    assert len(large) > 1 << 20
    assert gc.isenabled()
    assert len(decode_body(large, RunModelRequest, max_text_chars=256).data) == 8000
    assert gc.isenabled()
    with pytest.raises(InvalidSamples):
        decode_body(large.replace(b"0.5]", b'"x"]', 1), RunModelRequest, max_text_chars=256)
    assert gc.isenabled()
