"""A tiny skinned "mesh" for tests: points around a planar chain of bones, with the plug-in's
kind of per-vertex inputs and skin weights as targets. bench/skinning_data.py is the
production-size generator; this one is small enough for a unit or e2e test.

A chain of `bones` unit segments along x, bent by `bend` radians at every joint; vertices lie at
a random offset (up to 0.3) from a random point of the chain, so another seed is another mesh.
Inputs: the position relative to every joint (x, y) and the distance to every joint. Weights:
a compact falloff of how much farther each bone is than the nearest (zero past 0.4), rows
normalised to 1, so a vertex has one to three non-zero weights.
"""

from __future__ import annotations

import numpy as np

FALLOFF = 0.4


def chain_joints(bones: int, bend: float) -> np.ndarray:
    """(bones + 1, 2) joint positions of a chain of unit bones, each turned by `bend`."""
    angles = bend * np.arange(bones)
    steps = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])


def skin_mesh(
    vertices: int, *, bones: int = 6, bend: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (vertices, 3 * (bones + 1)), weights (vertices, bones)) as float32."""
    rng = np.random.default_rng(seed)
    joints = chain_joints(bones, bend)
    # Weights come from the rest (straight) chain, as a rig's would; the mesh is then bent.
    rest = chain_joints(bones, 0.0)
    along = rng.uniform(0.0, bones, size=vertices)
    offset = rng.uniform(-0.3, 0.3, size=(vertices, 2))
    rest_points = np.stack([along, np.zeros(vertices)], axis=1) + offset
    weights = _falloff_weights(rest_points, rest)
    points = _bend(rest_points, rest, joints, weights)
    relative = points[:, None, :] - joints[None, :, :]
    distances = np.linalg.norm(relative, axis=2)
    inputs = np.concatenate([relative.reshape(vertices, -1), distances], axis=1)
    return inputs.astype(np.float32), weights.astype(np.float32)


def _falloff_weights(points: np.ndarray, joints: np.ndarray) -> np.ndarray:
    starts, ends = joints[:-1], joints[1:]
    direction = ends - starts
    t = np.clip(((points[:, None, :] - starts) * direction).sum(axis=2), 0.0, 1.0)
    nearest = starts + t[..., None] * direction
    distance = np.linalg.norm(points[:, None, :] - nearest, axis=2)
    excess = distance - distance.min(axis=1, keepdims=True)
    falloff = np.clip(1.0 - (excess / FALLOFF) ** 2, 0.0, None) ** 2
    return falloff / falloff.sum(axis=1, keepdims=True)


def _bend(
    points: np.ndarray, rest: np.ndarray, posed: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Linear blend skinning: each bone moves its points rigidly from rest to posed."""
    moved = np.zeros_like(points)
    for bone in range(len(rest) - 1):
        before, after = rest[bone + 1] - rest[bone], posed[bone + 1] - posed[bone]
        angle = np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0])
        turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        rigid = (points - rest[bone]) @ turn.T + posed[bone]
        moved += weights[:, bone : bone + 1] * rigid
    return moved


def invalid_rows(weights: np.ndarray, *, max_nonzero: int | None = None) -> int:
    """How many rows are not skin weights: a negative entry, a sum off 1 by more than 1e-6, or
    (with `max_nonzero`) more non-zero entries than that."""
    rows = np.asarray(weights, dtype=np.float64)
    bad = (rows < 0.0).any(axis=1) | (np.abs(rows.sum(axis=1) - 1.0) > 1e-6)
    if max_nonzero is not None:
        bad |= (rows != 0.0).sum(axis=1) > max_nonzero
    return int(bad.sum())
