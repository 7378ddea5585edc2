"""The skinning benchmark's generators (bench/skinning_data.py): valid weights, the promised
vertex counts, and a test mesh that differs from the training mesh in resolution and pose."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import skinning_data  # noqa: E402


@pytest.fixture(scope="module")
def skeleton() -> skinning_data.Skeleton:
    return skinning_data.biped_skeleton()


@pytest.fixture(scope="module")
def train(skeleton: skinning_data.Skeleton) -> skinning_data.SkinnedMesh:
    return skinning_data.skinned_mesh(skeleton, vertices=1500, pose_seed=1)


@pytest.fixture(scope="module")
def test(skeleton: skinning_data.Skeleton) -> skinning_data.SkinnedMesh:
    return skinning_data.skinned_mesh(skeleton, vertices=2500, pose_seed=2)


def test_skeleton_branches_from_the_root_with_at_least_12_joints(
    skeleton: skinning_data.Skeleton,
) -> None:
    assert len(skeleton.names) >= 12
    assert (skeleton.parents < 0).sum() == 1
    chains_from_root = np.flatnonzero(skeleton.parents == 0)
    assert len(chains_from_root) >= 3


def test_weights_are_non_negative_rows_summing_to_one_mostly_zero(
    train: skinning_data.SkinnedMesh,
) -> None:
    assert (train.weights >= 0.0).all()
    np.testing.assert_allclose(train.weights.sum(axis=1), 1.0, atol=1e-9)
    assert (train.weights == 0.0).mean() > 0.5
    # Every joint moves some vertex by a good share (least: the neck, half hidden by others).
    assert (train.weights.max(axis=0) > 0.4).all()


def test_meshes_have_at_least_the_vertices_asked_for_and_close_to_it(
    train: skinning_data.SkinnedMesh, test: skinning_data.SkinnedMesh
) -> None:
    assert 1500 <= len(train.positions) <= 1500 * 1.1
    assert 2500 <= len(test.positions) <= 2500 * 1.1
    assert train.weights.shape == (len(train.positions), 17)
    np.testing.assert_allclose(np.linalg.norm(test.normals, axis=1), 1.0, atol=1e-9)
    assert train.neighbours.max() < len(train.positions)


def test_test_mesh_differs_in_resolution_and_in_pose(
    train: skinning_data.SkinnedMesh, test: skinning_data.SkinnedMesh
) -> None:
    assert len(test.positions) != len(train.positions)
    turned = np.einsum("jba,jbc->jac", train.pose.rotations, test.pose.rotations)
    angles = np.degrees(np.arccos(np.clip((np.trace(turned, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert (angles > 5.0).mean() > 0.5


def test_features_are_the_plugins_with_one_smoothing_pass_appended(
    train: skinning_data.SkinnedMesh,
) -> None:
    raw = skinning_data.plugin_features(train, 0)
    smoothed = skinning_data.plugin_features(train, 1)
    joints = train.weights.shape[1]
    assert raw.shape == (len(train.positions), 4 * joints + 3)
    np.testing.assert_array_equal(smoothed[:, : raw.shape[1]], raw)
    assert not np.allclose(smoothed[:, raw.shape[1] :], raw)


def test_relative_positions_are_pose_consistent_for_a_rigidly_bound_vertex(
    skeleton: skinning_data.Skeleton,
    train: skinning_data.SkinnedMesh,
    test: skinning_data.SkinnedMesh,
) -> None:
    # The same rest point, bound to one joint only, posed twice: same coordinates in that joint's
    # frame although its world position moved.
    joint = skeleton.names.index("l_elbow")
    rest = skeleton.rest_positions[joint] + np.array([0.1, 0.05, 0.0])
    features = []
    for pose in (train.pose, test.pose):
        world = (
            pose.rotations[joint] @ (rest - skeleton.rest_positions[joint]) + pose.positions[joint]
        )
        mesh = skinning_data.SkinnedMesh(
            rest[None],
            world[None],
            np.array([[0.0, 1.0, 0.0]]),
            np.zeros((0, 2), int),
            np.eye(17)[joint][None],
            pose,
        )
        features.append(skinning_data.plugin_features(mesh)[0, 3 * joint : 3 * joint + 3])
    np.testing.assert_allclose(features[0], features[1], atol=1e-5)
    np.testing.assert_allclose(features[0], [0.1, 0.05, 0.0], atol=1e-5)
