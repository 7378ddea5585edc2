"""The projection onto the probability simplex that `weights` serves through."""

from __future__ import annotations

import numpy as np
import pytest

from sgt.ml.numerics.simplex import project_to_simplex
from skin_mesh import invalid_rows


def random_rows(rows: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.2, 0.6, size=(rows, width))


@pytest.mark.parametrize("width", [1, 2, 5, 17])
def test_every_projected_row_is_a_weight_row(width: int) -> None:
    projected = project_to_simplex(random_rows(500, width, seed=width))
    assert projected.dtype == np.float32 and projected.shape == (500, width)
    assert invalid_rows(projected) == 0


def test_a_valid_row_is_kept_and_exact_zeros_stay_zero() -> None:
    rows = np.array([[0.2, 0.3, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])
    np.testing.assert_allclose(project_to_simplex(rows), rows, atol=1e-7)
    assert project_to_simplex(np.array([[5.0, -1.0, 0.1]])).tolist() == [[1.0, 0.0, 0.0]]


def test_it_is_the_nearest_weight_row() -> None:
    rows = random_rows(200, 4, seed=3)
    projected = project_to_simplex(rows).astype(np.float64)
    # No valid row from a dense random sample of the simplex is nearer than the projection.
    candidates = np.random.default_rng(4).dirichlet(np.full(4, 0.5), size=20_000)
    nearest = ((rows[:, None, :] - candidates[None]) ** 2).sum(axis=2).min(axis=1)
    assert np.all(((rows - projected) ** 2).sum(axis=1) <= nearest + 1e-9)


def test_it_never_moves_a_prediction_away_from_a_true_weight_row() -> None:
    truth = np.random.default_rng(5).dirichlet(np.full(6, 0.3), size=1000)
    predictions = truth + np.random.default_rng(6).normal(0.0, 0.2, size=truth.shape)
    before = ((predictions - truth) ** 2).sum(axis=1)
    after = ((project_to_simplex(predictions) - truth) ** 2).sum(axis=1)
    assert np.all(after <= before + 1e-9)
    assert after.mean() < 0.8 * before.mean()


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_max_nonzero_keeps_the_largest_and_sums_to_one(limit: int) -> None:
    rows = random_rows(400, 9, seed=limit)
    projected = project_to_simplex(rows, max_nonzero=limit)
    assert invalid_rows(projected, max_nonzero=limit) == 0
    kept = np.argsort(-rows, axis=1, kind="stable")[:, :limit]
    outside = np.ones_like(rows, dtype=bool)
    np.put_along_axis(outside, kept, False, axis=1)
    assert np.all(projected[outside] == 0.0)
    # The two largest, moved up together until they sum to 1.
    sparse = project_to_simplex(np.array([[0.5, 0.3, 0.2]]), max_nonzero=2)
    np.testing.assert_allclose(sparse, [[0.6, 0.4, 0.0]], atol=1e-7)


def test_empty_input_and_non_finite_entries() -> None:
    assert project_to_simplex(np.zeros((0, 3))).shape == (0, 3)
    projected = project_to_simplex(np.array([[np.nan, 0.5, np.inf]]))
    assert invalid_rows(projected) == 0
    with pytest.raises(ValueError, match="2-D"):
        project_to_simplex(np.zeros(3))
