"""Pose-driven corrective shapes: joint rotations in, every vertex's offset out (numpy only).

A tube-shaped mesh of V vertices is wrapped around a chain of J joints lying on the x axis (an
arm, a tail, a spine). Each pose gives every joint a rotation vector (twist about the bone, then
two bend components); the corrective offsets a rig would need on top of skinning are
synthesised as a sum of smooth spatial patterns, each weighted by a nonlinear function of the
pose:

- muscle bulge between neighbouring joints k, k+1: radial, on the inner side of both bends,
  growing with the product g_k(θ) g_{k+1}(θ) of their bend profiles g = (|b| + b·(cosθ, sinθ))/2;
- crease at each joint: a radial pinch ∝ (1 - cos |b|) and a squeeze on the inner side ∝ (b·u)²;
- skin sliding: around the bone with the twist (∝ sin t, stronger when the joint is bent) and
  along it towards the inner side of the bend (∝ (b·u) cos t).

Every pattern is a Gaussian band in the position s along the chain times a low harmonic in the
angle θ around it, so the offsets are smooth over the surface and, by construction, of rank at
most `term_count(J)` (7 J + 6 (J - 1)): principal shapes capture them, as they capture real
correctives. The model sees the rotations in one of three encodings: the rotation vector
(axis-angle, 3 per joint), the first two columns of the rotation matrix ("6d", 6 per joint) or a
unit quaternion with w >= 0 (4 per joint).

Deterministic from the seed; train and test poses come from separate random streams. Imports
numpy and the standard library only, so that any benchmark or test may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENCODING_WIDTH = {"axis_angle": 3, "6d": 6, "quaternion": 4}
# Joint limits in radians: twist about the bone, then the two bends.
TWIST_LIMIT, BEND_LIMIT = 0.6, 1.1
# Keeps |b| smooth where the bend vanishes.
BEND_FLOOR = 0.05
CHAIN_LENGTH, TUBE_RADIUS = 10.0, 1.0
# Amplitudes of the patterns, in mesh units (the tube's radius is 1).
BULGE, CREASE, PINCH, TWIST_SLIDE, AXIAL_SLIDE = 0.6, 0.25, 0.15, 0.15, 0.08


@dataclass(frozen=True)
class Mesh:
    """Rest positions (V, 3) and the surface coordinates the patterns are built on."""

    positions: np.ndarray
    along: np.ndarray  # s in [0, 1] along the chain
    angle: np.ndarray  # θ around it
    joint_at: np.ndarray  # s of each joint


@dataclass(frozen=True)
class DeformerTask:
    """One benchmark case. Targets are (poses, 3 V), vertex v's (x, y, z) in columns 3v..3v+2."""

    name: str
    mesh: Mesh
    encoding: str
    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray


def term_count(joints: int) -> int:
    """The rank bound of the offsets: 7 patterns per joint, 6 per neighbouring pair."""
    return 7 * joints + 6 * (joints - 1)


def make_mesh(vertices: int, joints: int, rng: np.random.Generator) -> Mesh:
    along = rng.uniform(0.0, 1.0, vertices)
    angle = rng.uniform(-np.pi, np.pi, vertices)
    # A gently varying radius, so the tube is not a perfect cylinder.
    radius = TUBE_RADIUS * (1.0 + 0.15 * np.sin(3.0 * np.pi * along))
    positions = np.stack(
        [CHAIN_LENGTH * along, radius * np.cos(angle), radius * np.sin(angle)], axis=1
    )
    joint_at = np.linspace(0.15, 0.85, joints)
    return Mesh(positions.astype(np.float32), along, angle, joint_at)


def random_rotations(poses: int, joints: int, rng: np.random.Generator) -> np.ndarray:
    """(poses, joints, 3) rotation vectors (twist, bend y, bend z) within the joint limits."""
    limits = np.array([TWIST_LIMIT, BEND_LIMIT, BEND_LIMIT])
    return rng.uniform(-1.0, 1.0, (poses, joints, 3)) * limits


def rotation_matrices(rotations: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (..., 3) rotation vectors to (..., 3, 3) matrices."""
    angle = np.linalg.norm(rotations, axis=-1, keepdims=True)
    axis = rotations / np.maximum(angle, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1)
    cross = cross.reshape(*rotations.shape[:-1], 3, 3)
    sine, cosine = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + sine * cross + (1.0 - cosine) * (cross @ cross)


def encode(rotations: np.ndarray, encoding: str) -> np.ndarray:
    """(poses, joints, 3) rotation vectors as (poses, joints * width) float32 model inputs."""
    poses = len(rotations)
    if encoding == "axis_angle":
        encoded = rotations
    elif encoding == "6d":
        encoded = rotation_matrices(rotations)[..., :, :2].swapaxes(-1, -2)
    elif encoding == "quaternion":
        half = 0.5 * np.linalg.norm(rotations, axis=-1, keepdims=True)
        axis = rotations / np.maximum(2.0 * half, 1e-12)
        encoded = np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)
    else:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {list(ENCODING_WIDTH)}")
    return np.asarray(encoded, dtype=np.float32).reshape(poses, -1)


def _band(along: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((along - centre) / width) ** 2)


def spatial_patterns(mesh: Mesh) -> np.ndarray:
    """(terms, 3 V): every pattern's offset of every vertex, in the order `pose_weights` uses."""
    joints = len(mesh.joint_at)
    spacing = 0.7 / max(joints - 1, 1)
    cos, sin = np.cos(mesh.angle), np.sin(mesh.angle)
    zero = np.zeros_like(cos)
    radial = np.stack([zero, cos, sin], axis=1)
    around = np.stack([zero, -sin, cos], axis=1)
    axial = np.stack([np.ones_like(cos), zero, zero], axis=1)
    # The harmonics a product of two bend profiles expands into.
    harmonics = [np.ones_like(cos), cos, sin, cos * cos, cos * sin, sin * sin]
    patterns: list[np.ndarray] = []
    for joint, centre in enumerate(mesh.joint_at):
        crease = _band(mesh.along, centre, 0.3 * spacing)
        patterns.append(crease[:, None] * radial)
        patterns += [(crease * h)[:, None] * radial for h in harmonics[3:]]
        beyond = _band(mesh.along, centre + 0.5 * spacing, 0.6 * spacing)
        patterns.append(beyond[:, None] * around)
        slide = _band(mesh.along, centre, 0.5 * spacing)
        patterns += [(slide * h)[:, None] * axial for h in harmonics[1:3]]
        if joint + 1 < joints:
            middle = 0.5 * (centre + mesh.joint_at[joint + 1])
            bulge = _band(mesh.along, middle, 0.45 * spacing)
            patterns += [(bulge * h)[:, None] * radial for h in harmonics]
    return np.stack(patterns).reshape(len(patterns), -1)


def pose_weights(rotations: np.ndarray) -> np.ndarray:
    """(poses, terms): how strongly each pattern is present in each pose (nonlinear, coupled)."""
    twist, bend_y, bend_z = rotations[..., 0], rotations[..., 1], rotations[..., 2]
    size = np.sqrt(bend_y**2 + bend_z**2 + BEND_FLOOR**2)
    joints = rotations.shape[1]
    columns: list[np.ndarray] = []
    for k in range(joints):
        t, y, z, m = twist[:, k], bend_y[:, k], bend_z[:, k], size[:, k]
        columns.append(-CREASE * (1.0 - np.cos(m)))
        columns += [-PINCH * y * y, -PINCH * 2.0 * y * z, -PINCH * z * z]
        columns.append(TWIST_SLIDE * np.sin(t) * (1.0 + 0.5 * m))
        columns += [AXIAL_SLIDE * y * np.cos(t), AXIAL_SLIDE * z * np.cos(t)]
        if k + 1 < joints:
            # g_k g_j = (m_k + b_k·u)(m_j + b_j·u) / 4, expanded over the harmonics.
            y2, z2, m2 = bend_y[:, k + 1], bend_z[:, k + 1], size[:, k + 1]
            scale = BULGE / 4.0
            columns += [
                scale * m * m2,
                scale * (m * y2 + m2 * y),
                scale * (m * z2 + m2 * z),
                scale * y * y2,
                scale * (y * z2 + z * y2),
                scale * z * z2,
            ]
    return np.stack(columns, axis=1)


def corrective_offsets(rotations: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """(poses, 3 V) float32 offsets of `rotations` (poses, joints, 3)."""
    weights = pose_weights(rotations).astype(np.float32)
    return weights @ patterns.astype(np.float32)


def make_task(
    vertices: int,
    joints: int,
    encoding: str,
    *,
    train: int = 200,
    test: int = 500,
    seed: int = 0,
) -> DeformerTask:
    """A deterministic case: same arguments, same arrays."""
    mesh_stream, train_stream, test_stream = np.random.default_rng(seed).spawn(3)
    mesh = make_mesh(vertices, joints, mesh_stream)
    patterns = spatial_patterns(mesh)
    train_rotations = random_rotations(train, joints, train_stream)
    test_rotations = random_rotations(test, joints, test_stream)
    return DeformerTask(
        name=f"{joints}j_{encoding}_v{vertices}",
        mesh=mesh,
        encoding=encoding,
        train_inputs=encode(train_rotations, encoding),
        train_targets=corrective_offsets(train_rotations, patterns),
        test_inputs=encode(test_rotations, encoding),
        test_targets=corrective_offsets(test_rotations, patterns),
    )


# The two input cases of the benchmark: (joints, encoding).
CASES = {"A": (3, "axis_angle"), "B": (20, "6d")}


def make_case(case: str, vertices: int, *, seed: int = 0) -> DeformerTask:
    joints, encoding = CASES[case]
    return make_task(vertices, joints, encoding, seed=seed)
