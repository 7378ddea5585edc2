"""The arithmetic of choosing between and blending models by their validation residuals.

Pure functions on numpy arrays; imports numpy and the standard library only.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

# A candidate whose out-of-fold MSE exceeds the best one's by more than this factor gets no
# share of a stacked blend: such shares did not carry over to new rows (docs/quality.md).
MAX_STACKED_ERROR_RATIO = 5.0


def squared_errors(residuals: np.ndarray) -> np.ndarray:
    """Each row's mean squared residual over the outputs, in float64."""
    return np.asarray((residuals**2).mean(axis=1), dtype=np.float64)


def beats(
    challenger: tuple[np.ndarray, np.ndarray], default: tuple[np.ndarray, np.ndarray]
) -> float:
    """How much lower the challenger's MSE is on the rows both were validated on, after
    subtracting one standard error of the paired difference; positive means it wins."""
    common, challenger_at, default_at = np.intersect1d(
        challenger[0], default[0], return_indices=True
    )
    if len(common) < 2:
        return -math.inf
    difference = squared_errors(default[1][default_at]) - squared_errors(
        challenger[1][challenger_at]
    )
    standard_error = float(difference.std(ddof=1)) / math.sqrt(len(difference))
    return float(difference.mean()) - standard_error


def stacking_weights(residuals: list[np.ndarray], *, step: float = 0.05) -> np.ndarray:
    """Non-negative weights summing to 1 whose weighted sum of the residual arrays (each the
    out-of-fold residuals of one candidate, same rows) has the least mean square. A grid on the
    simplex: deterministic, and with four candidates 1771 points."""
    columns = np.stack([np.ravel(r) for r in residuals], axis=1)
    gram = columns.T @ columns
    grid = simplex_grid(len(residuals), int(round(1.0 / step)))
    losses = np.einsum("pk,kl,pl->p", grid, gram, grid)
    # The first of (nearly) equal minima, so that round-off cannot flip the choice.
    return np.array(grid[int(np.argmax(losses <= losses.min() + 1e-12))])  # a copy


def stacked_shares(out_of_fold: list[np.ndarray]) -> np.ndarray:
    """Stacking weights of the candidates whose out-of-fold MSE is within
    MAX_STACKED_ERROR_RATIO of the best one's; 0 for the others. Far worse candidates stay out
    because on few rows stacking can give them a share for fold errors that happen to cancel,
    which new rows do not repeat (trees off the range of the training rows, say)."""
    errors = np.array([np.mean(np.square(residuals)) for residuals in out_of_fold])
    eligible = errors <= MAX_STACKED_ERROR_RATIO * errors.min()
    shares = np.zeros(len(out_of_fold))
    shares[eligible] = stacking_weights(list(itertools.compress(out_of_fold, eligible)))
    return shares


@functools.cache
def simplex_grid(count: int, ticks: int) -> np.ndarray:
    """Every vector of `count` multiples of 1/ticks that sum to 1, one per row. Read-only: the
    array is cached and shared by every call."""
    points = [
        (*split, ticks - sum(split))
        for split in itertools.product(range(ticks + 1), repeat=count - 1)
        if sum(split) <= ticks
    ]
    grid = np.array(points, dtype=np.float64) / ticks
    grid.setflags(write=False)
    return grid
