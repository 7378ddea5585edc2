"""Euclidean projection of rows onto the probability simplex, optionally k-sparse.

The projection of a row `v` is the non-negative row summing to 1 nearest to `v`:
`max(v - tau, 0)` for the one `tau` that makes it sum to 1 (found by sorting). It keeps exact
zeros (unlike a softmax) and never moves a prediction farther from any valid row: projecting
onto a convex set is non-expansive, so every row's error to a true weight row can only shrink.
The k-sparse version keeps the k largest entries of `v` and projects those alone, which is the
nearest k-sparse point of the simplex. Pure functions of numpy arrays; imports numpy only.
"""

from __future__ import annotations

import numpy as np


def project_to_simplex(rows: np.ndarray, *, max_nonzero: int | None = None) -> np.ndarray:
    """Each row of the (n, d) `rows` projected onto {w >= 0, sum w = 1}, as float32 whose sums
    are 1 within a float32 rounding; with `max_nonzero` = k, at most k non-zero entries a row.
    Non-finite entries count as 0."""
    values = np.asarray(rows, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("expected a 2-D array of rows")
    n, width = values.shape
    if width == 0 or n == 0:
        return np.zeros((n, width), dtype=np.float32)
    values = np.where(np.isfinite(values), values, 0.0)
    if max_nonzero is not None and max_nonzero < width:
        if max_nonzero < 1:
            raise ValueError("max_nonzero must be at least 1")
        # The k largest of each row (ties by lower index, as a stable sort gives them).
        order = np.argsort(-values, axis=1, kind="stable")
        dropped = order[:, max_nonzero:]
        values = values.copy()
        np.put_along_axis(values, dropped, -np.inf, axis=1)
    weights = _project(values)
    return _exact_sums(weights)


def _project(values: np.ndarray) -> np.ndarray:
    """The sorting algorithm (Held, Wolfe and Crowder 1974; Duchi et al. 2008) on every row."""
    # Entries left out of a sparse projection are -inf: they sort last and get weight 0.
    descending = -np.sort(-values, axis=1)
    finite = np.isfinite(descending)
    cumulative = np.cumsum(np.where(finite, descending, 0.0), axis=1) - 1.0
    ranks = np.arange(1, values.shape[1] + 1, dtype=np.float64)
    # The support is the largest r with sorted[r] > (cumsum[r] - 1) / r.
    with np.errstate(invalid="ignore"):
        is_support = finite & (descending - cumulative / ranks > 0.0)
    support = np.maximum(is_support.sum(axis=1), 1)
    tau = cumulative[np.arange(values.shape[0]), support - 1] / support
    with np.errstate(invalid="ignore"):
        projected: np.ndarray = np.maximum(values - tau[:, None], 0.0)
    return projected


def _exact_sums(weights: np.ndarray) -> np.ndarray:
    """To float32, with each row's rounding error moved onto its largest entry so that the
    float32 row sums to 1 as closely as float32 allows."""
    result = weights.astype(np.float32)
    largest = np.argmax(result, axis=1)
    rows = np.arange(result.shape[0])
    shortfall = 1.0 - result.astype(np.float64).sum(axis=1)
    result[rows, largest] = (result[rows, largest].astype(np.float64) + shortfall).astype(
        np.float32
    )
    return result
