"""The binary extension's arrays (docs/binary.md) to numpy and back.

Nested JSON lists become float32 numpy arrays here too, as early as possible: the lists of a
20,000-row request hold about 80 MB of Python floats, freed before the model runs.
"""

from __future__ import annotations

import numpy as np

from sgt.api.schemas import Float32Array, Matrix, RunWithStdArrays, TrainArrays
from sgt.domain.samples import from_float32_bytes, to_float32_rows

FLOAT32_LE = np.dtype("<f4")


def matrix_of(value: Matrix | Float32Array, *, field: str) -> np.ndarray:
    """`value` as a float32 array; raises InvalidSamples naming `field`."""
    if isinstance(value, Float32Array):
        return from_float32_bytes(value.base64, value.shape, field=field)
    return to_float32_rows(value, field=field)


def pairs_of(
    value: list[tuple[list[float], list[float]]] | TrainArrays,
) -> list[tuple[list[float], list[float]]] | tuple[np.ndarray, np.ndarray]:
    """`train_data` as the service takes it: the pairs as sent, or (inputs, labels) arrays."""
    if isinstance(value, TrainArrays):
        return (
            from_float32_bytes(value.inputs.base64, value.inputs.shape, field="train_data.inputs"),
            from_float32_bytes(value.labels.base64, value.labels.shape, field="train_data.labels"),
        )
    return value


def array_object(matrix: np.ndarray) -> Float32Array:
    """`matrix` (n, m) as the binary extension's object; encoded by msgspec as base64."""
    data = np.ascontiguousarray(matrix, dtype=FLOAT32_LE)
    return Float32Array(dtype="float32", shape=list(data.shape), base64=bytearray(data.data))


def arrays_with_std(
    mean: np.ndarray, std: np.ndarray, out_of_range: np.ndarray
) -> RunWithStdArrays:
    """The binary answer of `run_sgt_model` with `"return_std": true`."""
    return RunWithStdArrays(
        mean=array_object(mean), std=array_object(std), out_of_range=out_of_range.tolist()
    )
