"""Validation of `data` and `train_data`: geometry and finiteness, errors naming row and column."""

from __future__ import annotations

import numpy as np
import pytest

from sgt.domain.samples import to_input_matrix, to_training_arrays
from sgt.errors import InvalidSamples


def test_rows_become_a_contiguous_float32_matrix() -> None:
    matrix = to_input_matrix([[1, 2.5, -3], [4, 5, 6]], in_size=3)
    assert matrix.dtype == np.float32
    assert matrix.flags.c_contiguous
    assert matrix.tolist() == [[1.0, 2.5, -3.0], [4.0, 5.0, 6.0]]


def test_no_rows_is_an_empty_matrix_of_the_model_width() -> None:
    assert to_input_matrix([], in_size=4).shape == (0, 4)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([[1, 2, 3], [4, 5]], "data[1] has 2 values, row 0 has 3"),
        ([[1, 2, 3], [4, 5, 6], [7, 8, 9, 10]], "data[2] has 4 values"),
        ([[1, 2], [3, 4]], "in_size=3"),
        ([[1, 2, 3], [4, 5, 6], [7, float("nan"), 9]], "data[2][1] is NaN"),
        ([[1, 2, float("inf")]], "data[0][2] is infinite"),
        ([[1, 2, 3], [float("-inf"), 2, 3]], "data[1][0] is infinite"),
        ([1, 2, 3], "2-D"),
        ([[[1, 2, 3]]], "2-D"),
    ],
)
def test_bad_rows_are_refused_naming_the_cell(rows: object, expected: str) -> None:
    with pytest.raises(InvalidSamples) as raised:
        to_input_matrix(rows, in_size=3)  # type: ignore[arg-type]
    assert expected in raised.value.message


def test_a_number_beyond_float32_is_refused_naming_the_cell() -> None:
    # 1e39 is a finite JSON number but overflows float32: it must not reach a model as inf.
    with pytest.raises(InvalidSamples) as raised:
        to_input_matrix([[1, 2, 3], [1, 2, 1e39]], in_size=3)
    assert "data[1][2]" in raised.value.message


def test_the_field_name_is_used_in_messages() -> None:
    with pytest.raises(InvalidSamples, match=r"inputs\[0\]\[1\] is NaN"):
        to_input_matrix([[0, float("nan")]], in_size=2, field="inputs")


def test_pairs_become_input_and_label_matrices() -> None:
    inputs, labels = to_training_arrays(
        [[[1, 2, 3], [4, 5]], [[6, 7, 8], [9, 10]]], in_size=3, out_size=2
    )
    assert inputs.dtype == labels.dtype == np.float32
    assert inputs.tolist() == [[1, 2, 3], [6, 7, 8]]
    assert labels.tolist() == [[4, 5], [9, 10]]


def test_no_pairs_are_empty_matrices() -> None:
    inputs, labels = to_training_arrays([], in_size=3, out_size=2)
    assert (inputs.shape, labels.shape) == ((0, 3), (0, 2))


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5], [6]]], "train_data[1] must be a pair"),
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3]]], "train_data[1] must be a pair"),
        ([[[1, 2], [4, 5]]], "in_size=3"),
        ([[[1, 2, 3], [4, 5, 6]]], "out_size=2"),
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3], [float("nan"), 5]]], "train_data[1][1][0] is NaN"),
        ([[[1, 2, 3], [4, 5]], [[1, float("inf"), 3], [4, 5]]], "train_data[1][0][1]"),
    ],
)
def test_bad_pairs_are_refused_naming_the_cell(pairs: object, expected: str) -> None:
    with pytest.raises(InvalidSamples) as raised:
        to_training_arrays(pairs, in_size=3, out_size=2)  # type: ignore[arg-type]
    assert expected in raised.value.message


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([[[1, 2, 3], [4, 5]], [[1, 2], [4, 5]]], "train_data[1][0]"),
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3], [4, 5]], [[1, 2, 3], [4]]], "train_data[2][1]"),
    ],
)
def test_a_pair_of_another_length_is_named_by_its_index(pairs: object, expected: str) -> None:
    with pytest.raises(InvalidSamples) as raised:
        to_training_arrays(pairs, in_size=3, out_size=2)  # type: ignore[arg-type]
    assert expected in raised.value.message
    assert "[*]" not in raised.value.message


def test_array_pairs_of_unequal_length_are_refused() -> None:
    arrays = (np.zeros((3, 3), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidSamples, match="3 inputs but 2 labels"):
        to_training_arrays(arrays, in_size=3, out_size=2)
