"""The corrective-shape generator of bench/deformer.py: shapes, determinism, structure."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import deformer_data  # noqa: E402


@pytest.fixture(scope="module")
def task() -> deformer_data.DeformerTask:
    return deformer_data.make_task(400, 3, "axis_angle", train=60, test=40, seed=3)


def test_shapes_follow_joints_encoding_and_vertices() -> None:
    for encoding, width in deformer_data.ENCODING_WIDTH.items():
        small = deformer_data.make_task(50, 4, encoding, train=7, test=5)
        assert small.train_inputs.shape == (7, 4 * width)
        assert small.test_inputs.shape == (5, 4 * width)
        assert small.train_targets.shape == (7, 150)
        assert small.test_targets.shape == (5, 150)
        assert small.train_targets.dtype == np.float32
        assert np.isfinite(small.train_targets).all()


def test_same_seed_same_arrays_other_seed_other_arrays(task: deformer_data.DeformerTask) -> None:
    again = deformer_data.make_task(400, 3, "axis_angle", train=60, test=40, seed=3)
    other = deformer_data.make_task(400, 3, "axis_angle", train=60, test=40, seed=4)
    assert np.array_equal(task.train_inputs, again.train_inputs)
    assert np.array_equal(task.test_targets, again.test_targets)
    assert not np.allclose(task.train_inputs, other.train_inputs)


def test_test_poses_are_not_train_poses(task: deformer_data.DeformerTask) -> None:
    gaps = np.linalg.norm(task.test_inputs[:, None, :] - task.train_inputs[None, :, :], axis=2)
    assert gaps.min() > 1e-3


def test_encodings_describe_the_same_rotation() -> None:
    rotations = deformer_data.random_rotations(5, 2, np.random.default_rng(0))
    matrices = deformer_data.rotation_matrices(rotations)
    six = deformer_data.encode(rotations, "6d").reshape(5, 2, 2, 3)
    assert np.allclose(six[:, :, 0], matrices[..., :, 0], atol=1e-6)
    quaternion = deformer_data.encode(rotations, "quaternion").reshape(5, 2, 4)
    assert np.allclose(np.linalg.norm(quaternion, axis=2), 1.0, atol=1e-6)
    assert (quaternion[..., 0] >= 0).all()
    assert np.allclose(np.einsum("...ij,...kj->...ik", matrices, matrices), np.eye(3), atol=1e-9)


def test_offsets_are_nonlinear_in_the_rotations(task: deformer_data.DeformerTask) -> None:
    x = np.hstack([task.train_inputs, np.ones((len(task.train_inputs), 1), np.float32)])
    coefficients, *_ = np.linalg.lstsq(x, task.train_targets, rcond=None)
    residual = task.train_targets - x @ coefficients
    centred = task.train_targets - task.train_targets.mean(axis=0)
    assert (residual**2).sum() > 0.2 * (centred**2).sum()


def test_offsets_are_low_rank(task: deformer_data.DeformerTask) -> None:
    centred = task.train_targets - task.train_targets.mean(axis=0)
    energy = np.linalg.svd(centred, compute_uv=False) ** 2
    share = np.cumsum(energy) / energy.sum()
    assert share[deformer_data.term_count(3) - 1] > 1 - 1e-6
    assert share[11] > 0.85


def test_offsets_are_smooth_over_the_surface(task: deformer_data.DeformerTask) -> None:
    positions = task.mesh.positions
    offsets = task.train_targets.reshape(len(task.train_targets), -1, 3)
    distances = np.linalg.norm(positions[:, None] - positions[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    neighbour_change = np.linalg.norm(offsets - offsets[:, nearest], axis=2).mean()
    shuffled = np.random.default_rng(0).permutation(len(positions))
    random_change = np.linalg.norm(offsets - offsets[:, shuffled], axis=2).mean()
    assert neighbour_change < 0.3 * random_change
