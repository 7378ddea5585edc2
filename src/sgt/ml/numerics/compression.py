"""Principal shapes of many targets: fit, project onto, reconstruct from, and choose how many.

Pure functions on numpy arrays, no state. Used by `std` when a model has many outputs (the
corrective shapes of a mesh, say): it learns a few coefficients per row instead of every output.
Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrincipalShapes:
    """Orthonormal rows `components` (k, d) of standardised targets, with the variance of the
    training rows along each (`variances`, descending) and in total (`total_variance`)."""

    components: np.ndarray
    variances: np.ndarray
    total_variance: float

    @property
    def count(self) -> int:
        return int(self.components.shape[0])


def fit_pca(centred: np.ndarray, *, max_components: int) -> PrincipalShapes:
    """The leading principal shapes of centred rows (n, d), at most `max_components` and at most
    the rank of the rows (never fewer than one).

    Works on the n x n Gram matrix, so its cost is n^2 d and its extra memory k d: right for a
    few hundred rows of many thousands of columns."""
    data = np.asarray(centred, dtype=np.float32)
    rows = data.shape[0]
    gram = (data @ data.T).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    total = float(max(np.trace(gram), 0.0))
    # Directions whose variance is round-off of the float32 Gram product are not shapes.
    significant = eigenvalues > max(total, 1e-30) * 1e-6
    count = max(1, min(max_components, int(significant.sum())))
    values = np.maximum(eigenvalues[:count], 1e-30)
    # Right singular vectors: V_k = Z^T U_k / s_k, one shape per row.
    components = (eigenvectors[:, :count].T / np.sqrt(values)[:, None]).astype(np.float32) @ data
    if not significant.any():
        components = np.zeros((1, data.shape[1]), dtype=np.float32)
    scale = max(rows, 1)
    return PrincipalShapes(
        components=np.ascontiguousarray(components, dtype=np.float32),
        variances=eigenvalues[:count].clip(min=0.0) / scale,
        total_variance=total / scale,
    )


def project(centred: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Coefficients (n, k) of centred rows (n, d) along orthonormal `components` (k, d)."""
    return np.asarray(np.asarray(centred, dtype=np.float32) @ components.T)


def reconstruct(coefficients: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Rows (n, d) from their coefficients (n, k): the inverse of `project` on the shapes' span."""
    return np.asarray(np.asarray(coefficients, dtype=np.float32) @ components)


def count_for_variance(shapes: PrincipalShapes, *, kept: float) -> int:
    """The fewest leading shapes that explain at least the fraction `kept` of the variance."""
    if shapes.total_variance <= 0.0:
        return 1
    explained = np.cumsum(shapes.variances) / shapes.total_variance
    reached = np.flatnonzero(explained >= kept)
    return int(reached[0]) + 1 if reached.size else shapes.count


def held_out_unexplained(held_out: np.ndarray, components: np.ndarray) -> np.ndarray:
    """For k = 1..K, the fraction of the held-out centred rows' variance that the first k shapes
    leave unexplained: it stops falling once further shapes are noise of the fitted rows."""
    data = np.asarray(held_out, dtype=np.float64)
    total = float(np.sum(data**2))
    if total <= 0.0:
        return np.zeros(components.shape[0])
    captured = np.cumsum(np.sum((data @ components.T.astype(np.float64)) ** 2, axis=0))
    return np.asarray(1.0 - captured / total)


def count_for_validation(unexplained: np.ndarray, *, tolerance: float) -> int:
    """The fewest shapes whose held-out unexplained fraction is within `tolerance` of the least
    any count reaches: more would only add coefficients that do not generalise."""
    if unexplained.size == 0:
        return 1
    good_enough = np.flatnonzero(unexplained <= float(unexplained.min()) + tolerance)
    return int(good_enough[0]) + 1


def balancing_rotation(covariance: np.ndarray) -> np.ndarray:
    """An orthogonal R (k, k) such that R^T C R has every diagonal entry equal to trace(C) / k.

    Principal-shape coefficients have very different variances; a model that standardises each
    column, then weighs them alike, spends as much on a shape that moves a vertex by a hair as
    on the main bulge. Rotated by R, every column carries the same share of the variance, so
    standardising them is one common scale and a squared error summed over columns is the
    squared error of the outputs (R is orthogonal). At most k - 1 plane rotations, each fixing
    one diagonal entry at the mean for good."""
    matrix = np.array(covariance, dtype=np.float64)
    count = matrix.shape[0]
    rotation = np.eye(count)
    target = float(np.trace(matrix)) / max(count, 1)
    tolerance = 1e-12 * max(abs(target), 1e-300)
    open_ = list(range(count))
    while len(open_) > 1:
        diagonal = np.array([matrix[i, i] for i in open_])
        high, low = int(np.argmax(diagonal)), int(np.argmin(diagonal))
        if diagonal[high] - target <= tolerance or target - diagonal[low] <= tolerance:
            break
        i, j = open_[high], open_[low]
        angle = _angle_to(matrix[i, i], matrix[j, j], matrix[i, j], target)
        plane = np.eye(count)
        cos, sin = np.cos(angle), np.sin(angle)
        plane[i, i], plane[j, j], plane[j, i], plane[i, j] = cos, cos, sin, -sin
        matrix = plane.T @ matrix @ plane
        matrix[i, i] = target  # what the angle solved for, without its round-off
        rotation = rotation @ plane
        open_.remove(i)
    return rotation


def _angle_to(high: float, low: float, cross: float, target: float) -> float:
    """The angle in [0, pi/2] at which the rotated entry cos^2 high + 2 cos sin cross +
    sin^2 low equals `target` (high >= target >= low, so one exists): by bisection."""
    start, end = 0.0, np.pi / 2.0
    for _ in range(60):
        middle = 0.5 * (start + end)
        value = (
            high * np.cos(middle) ** 2
            + 2.0 * cross * np.cos(middle) * np.sin(middle)
            + low * np.sin(middle) ** 2
        )
        if value > target:
            start = middle
        else:
            end = middle
    return 0.5 * (start + end)
