"""Choosing a batch of candidate rows to label next: pure numpy, no state, no torch.

Two greedy rules, each conditioning on the rows it has already chosen so that a batch is not k
near-copies of one row:

- `integrated_variance_batch` (GP posteriors): each step takes the candidate whose label would
  most reduce the posterior variance summed over the candidate pool (Cohn's ALC criterion), then
  updates the posterior as if that label had been observed (a fantasised update: the variance
  of a GP does not depend on the label's value). Targets held-out error, where picking the
  highest variance alone favours the edges of the input box.
- `spread_weighted_farthest_batch` (any model): each step takes the candidate farthest, in
  standardised input space, from the rows chosen so far, weighted by its predicted deviation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# The pool over which variance reduction is summed is at most this many candidates (evenly
# spaced through the list): the cost is reference rows x candidates per step.
MAX_REFERENCE_ROWS = 1500


def reference_rows(candidates: int) -> np.ndarray:
    """Indices of the candidates that stand for the pool when summing variance reduction."""
    if candidates <= MAX_REFERENCE_ROWS:
        return np.arange(candidates)
    return np.linspace(0, candidates - 1, MAX_REFERENCE_ROWS).round().astype(np.int64)


def integrated_variance_batch(
    *,
    cross: np.ndarray,
    variances: np.ndarray,
    column: Callable[[int], np.ndarray],
    noise: float,
    k: int,
) -> list[int]:
    """k distinct candidate indices, greedily by pool variance reduction.

    `cross` (r, m) is the posterior covariance between the reference rows and every candidate,
    `variances` (m,) the candidates' posterior variances, `column(j)` (m,) the posterior
    covariance of every candidate with candidate j, all given the training rows only; `noise`
    is the variance of a label's noise, in the same units. 1 ≤ k ≤ m."""
    cross = np.array(cross, dtype=np.float64)
    variances = np.array(variances, dtype=np.float64)
    updates: list[np.ndarray] = []
    chosen: list[int] = []
    for _ in range(k):
        denominator = np.maximum(variances, 0.0) + noise
        scores = np.square(cross).sum(axis=0) / denominator
        scores[chosen] = -np.inf
        best = int(np.argmax(scores))
        chosen.append(best)
        current = np.asarray(column(best), dtype=np.float64)
        for update in updates:
            current -= update * update[best]
        update = current / np.sqrt(denominator[best])
        updates.append(update)
        cross -= np.outer(cross[:, best] / np.sqrt(denominator[best]), update)
        variances -= np.square(update)
    return chosen


def spread_weighted_farthest_batch(
    *, standardised: np.ndarray, spread: np.ndarray, k: int
) -> list[int]:
    """k distinct candidate indices: first the one of largest `spread` (m,), then each time the
    one maximising spread x distance to the nearest chosen row in `standardised` (m, d) space."""
    weights = np.maximum(np.asarray(spread, dtype=np.float64), 1e-12)
    chosen = [int(np.argmax(weights))]
    nearest = np.linalg.norm(standardised - standardised[chosen[0]], axis=1)
    while len(chosen) < k:
        scores = weights * nearest
        scores[chosen] = -np.inf
        best = int(np.argmax(scores))
        chosen.append(best)
        nearest = np.minimum(nearest, np.linalg.norm(standardised - standardised[best], axis=1))
    return chosen
