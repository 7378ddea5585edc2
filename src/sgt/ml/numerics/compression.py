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
