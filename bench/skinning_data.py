"""Synthetic skinned meshes at production size: a branching skeleton, a surface around it, smooth
skin weights, poses by linear blend skinning, and the per-vertex inputs a Maya plug-in builds.

NumPy only; no SGT and no scikit-learn here, so any benchmark or test can reuse it.

The skeleton is a 17-joint biped (root, spine, chest, neck, head; two arms of shoulder, elbow,
wrist; two legs of hip, knee, ankle). Each joint owns one bone segment (to its first child, or a
short end segment for a leaf), and the surface is the union of one capsule per bone, sampled at a
chosen vertex spacing; vertices inside another capsule are dropped. Weights are computed in the
rest pose from each vertex's distance to each bone segment, then the mesh is posed with those
weights. Relative positions are taken in each joint's posed local frame (see `plugin_features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name, parent index (-1: root), rest position, capsule radius of the bone the joint owns.
JOINTS: tuple[tuple[str, int, tuple[float, float, float], float], ...] = (
    ("root", -1, (0.0, 0.0, 0.0), 0.17),
    ("spine", 0, (0.0, 0.45, 0.0), 0.16),
    ("chest", 1, (0.0, 0.9, 0.0), 0.18),
    ("neck", 2, (0.0, 1.3, 0.0), 0.07),
    ("head", 3, (0.0, 1.48, 0.0), 0.13),
    ("l_shoulder", 2, (0.3, 1.22, 0.0), 0.075),
    ("l_elbow", 5, (0.62, 1.22, 0.0), 0.06),
    ("l_wrist", 6, (0.92, 1.22, 0.0), 0.045),
    ("r_shoulder", 2, (-0.3, 1.22, 0.0), 0.075),
    ("r_elbow", 8, (-0.62, 1.22, 0.0), 0.06),
    ("r_wrist", 9, (-0.92, 1.22, 0.0), 0.045),
    ("l_hip", 0, (0.14, -0.08, 0.0), 0.095),
    ("l_knee", 11, (0.15, -0.55, 0.0), 0.075),
    ("l_ankle", 12, (0.15, -1.0, 0.0), 0.055),
    ("r_hip", 0, (-0.14, -0.08, 0.0), 0.095),
    ("r_knee", 14, (-0.15, -0.55, 0.0), 0.075),
    ("r_ankle", 15, (-0.15, -1.0, 0.0), 0.055),
)
# Leaf joints own a short segment in this direction: the skull, the hands, the feet.
LEAF_ENDS = {
    "head": (0.0, 0.22, 0.0),
    "l_wrist": (0.16, 0.0, 0.0),
    "r_wrist": (-0.16, 0.0, 0.0),
    "l_ankle": (0.0, -0.05, 0.18),
    "r_ankle": (0.0, -0.05, 0.18),
}
# Weight falloff: a bone gets weight while its distance is within this much of the nearest
# bone's, falling smoothly to exactly zero; bones farther away get none.
FALLOFF_WIDTH = 0.12
# Typical size of each joint's random local rotation in a pose. Far joints' frames move a lot
# even so (rotations add up along a chain); at 35 degrees a neighbour regressor on the plug-in's
# features is no better than the mean across poses, at 20 it still learns something.
POSE_DEGREES = 20.0


@dataclass(frozen=True)
class Skeleton:
    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int, -1 for the root
    rest_positions: np.ndarray  # (J, 3)
    bone_ends: np.ndarray  # (J, 3) rest position of the far end of the bone each joint owns
    radii: np.ndarray  # (J,)


@dataclass(frozen=True)
class Pose:
    rotations: np.ndarray  # (J, 3, 3) world rotation of each joint's frame
    positions: np.ndarray  # (J, 3) world position of each joint


@dataclass(frozen=True)
class SkinnedMesh:
    rest_positions: np.ndarray  # (V, 3)
    positions: np.ndarray  # (V, 3) posed
    normals: np.ndarray  # (V, 3) posed, unit length
    neighbours: np.ndarray  # (E, 2) undirected mesh edges, each listed once
    weights: np.ndarray  # (V, J) non-negative, rows sum to 1
    pose: Pose


def biped_skeleton() -> Skeleton:
    names = tuple(joint[0] for joint in JOINTS)
    parents = np.array([joint[1] for joint in JOINTS])
    rest = np.array([joint[2] for joint in JOINTS], dtype=np.float64)
    ends = rest.copy()
    for index, name in enumerate(names):
        children = np.flatnonzero(parents == index)
        if name in LEAF_ENDS:
            ends[index] = rest[index] + np.array(LEAF_ENDS[name])
        else:
            ends[index] = rest[children[0]]
    radii = np.array([joint[3] for joint in JOINTS])
    return Skeleton(names, parents, rest, ends, radii)


def rotation(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues: the rotation matrix of an axis-angle vector (radians)."""
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    k = axis_angle / angle
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


def random_pose(skeleton: Skeleton, seed: int, degrees: float = POSE_DEGREES) -> Pose:
    """Forward kinematics of a random local rotation at every joint (about `degrees` each, the
    root's included), plus a random translation of the root."""
    rng = np.random.default_rng(seed)
    count = len(skeleton.names)
    rotations = np.zeros((count, 3, 3))
    positions = np.zeros((count, 3))
    for joint in range(count):
        local = rotation(rng.normal(size=3) * np.radians(degrees) / np.sqrt(3.0))
        parent = skeleton.parents[joint]
        if parent < 0:
            rotations[joint] = local
            positions[joint] = skeleton.rest_positions[joint] + rng.normal(size=3)
            continue
        offset = skeleton.rest_positions[joint] - skeleton.rest_positions[parent]
        positions[joint] = positions[parent] + rotations[parent] @ offset
        rotations[joint] = rotations[parent] @ local
    return Pose(rotations, positions)


def capsule_surface(
    start: np.ndarray, end: np.ndarray, radius: float, spacing: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, outward normals and grid edges of a capsule around segment start-end, with about
    `spacing` between neighbouring vertices. Rings run along the profile (cap, tube, cap)."""
    axis = end - start
    length = float(np.linalg.norm(axis))
    axis = axis / length
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    side = np.cross(axis, helper)
    side /= np.linalg.norm(side)
    up = np.cross(axis, side)
    profile = np.pi * radius + length  # two quarter-circle caps of length pi*r/2 and the tube
    rings = max(3, round(profile / spacing))
    around = max(6, round(2.0 * np.pi * radius / spacing))
    arc = (np.arange(rings) + 0.5) / rings * profile
    cap = np.pi * radius / 2.0
    # Profile point: axial coordinate from start, and the direction's axial and radial parts.
    # Polar angle from -axis: 0 to pi/2 over the start cap, pi/2 along the tube, to pi at the end.
    polar = np.select(
        [arc < cap, arc > cap + length],
        [arc / radius, np.pi / 2 + (arc - cap - length) / radius],
        np.pi / 2,
    )
    axial_part, radial_part = -np.cos(polar), np.sin(polar)
    centre = np.clip(arc - cap, 0.0, length)
    angles = np.arange(around) * 2.0 * np.pi / around
    circle = np.cos(angles)[:, None] * side + np.sin(angles)[:, None] * up  # (around, 3)
    normals = axial_part[:, None, None] * axis + radial_part[:, None, None] * circle[None]
    points = start + centre[:, None, None] * axis + radius * normals
    ring, step = np.meshgrid(np.arange(rings), np.arange(around), indexing="ij")
    index = ring * around + step
    along = np.stack([index[:-1].ravel(), index[1:].ravel()], axis=1)
    across = np.stack([index.ravel(), (ring * around + (step + 1) % around).ravel()], axis=1)
    return points.reshape(-1, 3), normals.reshape(-1, 3), np.concatenate([along, across])


def segment_distances(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(V, J) distance from each point to each segment starts[j]-ends[j]."""
    direction = ends - starts  # (J, 3)
    relative = points[:, None, :] - starts[None]  # (V, J, 3)
    t = np.clip((relative * direction).sum(axis=2) / (direction**2).sum(axis=1), 0.0, 1.0)
    return np.linalg.norm(relative - t[..., None] * direction, axis=2)


def rest_surface(skeleton: Skeleton, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The union of the bones' capsules: vertices, normals and mesh edges, in the rest pose."""
    points, normals, edges = [], [], []
    offset = 0
    for joint in range(len(skeleton.names)):
        p, n, e = capsule_surface(
            skeleton.rest_positions[joint],
            skeleton.bone_ends[joint],
            float(skeleton.radii[joint]),
            spacing,
        )
        points.append(p)
        normals.append(n)
        edges.append(e + offset)
        offset += len(p)
    owner = np.repeat(np.arange(len(points)), [len(p) for p in points])
    all_points = np.concatenate(points)
    distances = segment_distances(all_points, skeleton.rest_positions, skeleton.bone_ends)
    inside = distances < skeleton.radii[None] * 0.999
    inside[np.arange(len(all_points)), owner] = False
    keep = ~inside.any(axis=1)
    renumber = np.cumsum(keep) - 1
    all_edges = np.concatenate(edges)
    kept_edges = all_edges[keep[all_edges].all(axis=1)]
    return all_points[keep], np.concatenate(normals)[keep], renumber[kept_edges]


def skin_weights(rest_points: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(V, J) weights: a smooth, compactly supported falloff of each bone's distance beyond the
    nearest bone's, normalised to sum to 1. The nearest bone always has weight; far ones none."""
    distances = segment_distances(rest_points, skeleton.rest_positions, skeleton.bone_ends)
    excess = (distances - distances.min(axis=1, keepdims=True)) / FALLOFF_WIDTH
    falloff = np.clip(1.0 - excess**2, 0.0, None) ** 2
    return falloff / falloff.sum(axis=1, keepdims=True)


def posed(
    rest_points: np.ndarray,
    rest_normals: np.ndarray,
    weights: np.ndarray,
    skeleton: Skeleton,
    pose: Pose,
) -> tuple[np.ndarray, np.ndarray]:
    """Linear blend skinning of the rest vertices and normals into `pose`."""
    local = rest_points[:, None, :] - skeleton.rest_positions[None]  # (V, J, 3)
    moved = np.einsum("jab,vjb->vja", pose.rotations, local) + pose.positions[None]
    points = (weights[..., None] * moved).sum(axis=1)
    turned = np.einsum("jab,vb->vja", pose.rotations, rest_normals)
    normals = (weights[..., None] * turned).sum(axis=1)
    return points, normals / np.linalg.norm(normals, axis=1, keepdims=True)


def spacing_for(skeleton: Skeleton, vertices: int) -> float:
    """A vertex spacing whose surface has close to `vertices` vertices (never fewer)."""
    spacing = 0.05
    for _ in range(4):
        count = len(rest_surface(skeleton, spacing)[0])
        spacing *= np.sqrt(count / vertices)
    while len(rest_surface(skeleton, spacing)[0]) < vertices:
        spacing *= 0.99
    return float(spacing)


def skinned_mesh(skeleton: Skeleton, *, vertices: int, pose_seed: int) -> SkinnedMesh:
    """A skinned mesh of at least (and about) `vertices` vertices in the pose drawn by
    `pose_seed`. Another `vertices` is another resolution: another set of vertices."""
    rest_points, rest_normals, edges = rest_surface(skeleton, spacing_for(skeleton, vertices))
    weights = skin_weights(rest_points, skeleton)
    pose = random_pose(skeleton, pose_seed)
    points, normals = posed(rest_points, rest_normals, weights, skeleton, pose)
    return SkinnedMesh(rest_points, points, normals, edges, weights, pose)


def neighbour_mean(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each row replaced by the mean of its mesh neighbours' rows (itself where it has none)."""
    sums = np.zeros_like(values)
    counts = np.zeros(len(values))
    for a, b in ((0, 1), (1, 0)):
        np.add.at(sums, edges[:, a], values[edges[:, b]])
        np.add.at(counts, edges[:, a], 1.0)
    isolated = counts == 0
    sums[isolated] = values[isolated]
    counts[isolated] = 1.0
    return sums / counts[:, None]


def plugin_features(mesh: SkinnedMesh, smoothing_passes: int = 0) -> np.ndarray:
    """Per-vertex inputs as the plug-in builds them, float32: the vertex position in every
    joint's local frame (J x 3), the distance to every joint (J), the vertex normal (3); then, for
    each smoothing pass, the same features averaged over mesh neighbours once more, appended.

    Local frames make the relative positions pose-consistent: a vertex that moves rigidly with a
    joint keeps the same coordinates in that joint's frame, whatever the pose."""
    offsets = mesh.positions[:, None, :] - mesh.pose.positions[None]  # (V, J, 3) world
    local = np.einsum("jba,vjb->vja", mesh.pose.rotations, offsets)  # R_j^T (v - p_j)
    distances = np.linalg.norm(offsets, axis=2)
    raw = np.concatenate([local.reshape(len(local), -1), distances, mesh.normals], axis=1)
    blocks = [raw]
    for _ in range(smoothing_passes):
        blocks.append(neighbour_mean(blocks[-1], mesh.neighbours))
    return np.concatenate(blocks, axis=1).astype(np.float32)
