"""Pieces every training run shares: the validation split and the plateau / convergence rule.

Imports numpy only.
"""

from __future__ import annotations

import numpy as np

# Below this many rows a held-out split is too noisy to steer training; runs fall back to the
# training loss.
MIN_ROWS_FOR_VALIDATION = 10


def split_holdout(
    row_count: int, *, seed: int, fraction: float = 0.2, max_rows: int = 5000
) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled (train, validation) row indices; validation is empty for very small data."""
    order = np.random.default_rng(seed).permutation(row_count)
    if row_count < MIN_ROWS_FOR_VALIDATION:
        return order, order[:0]
    val_count = min(max_rows, max(2, int(round(fraction * row_count))))
    return order[val_count:], order[:val_count]


class Plateau:
    """Tracks a loss to minimise: says when it improved, when to cut the rate, when to stop.

    An improvement must beat the best so far by `min_relative`. After `patience` reports without
    one the learning rate should be cut; after `max_cuts` cuts, or `max_reports`, the run is over.
    """

    def __init__(
        self, *, patience: int, max_cuts: int, max_reports: int, min_relative: float = 1e-4
    ) -> None:
        self.best = float("inf")
        self.patience = patience
        self.max_cuts = max_cuts
        self.max_reports = max_reports
        self.min_relative = min_relative
        self.reports = 0
        self.cuts = 0
        self._since_best = 0

    def report(self, loss: float) -> bool:
        """Record one loss; True when it is a new best (a tiny gain does not reset patience)."""
        self.reports += 1
        # Losses are on standardised targets, so an absolute floor of 1e-6 means "fitted".
        if loss < self.best - max(self.best * self.min_relative, 1e-6):
            self._since_best = 0
        else:
            self._since_best += 1
        if loss < self.best:
            self.best = loss
            return True
        return False

    def should_cut(self) -> bool:
        """True once per `patience` reports without improvement; counts the cut."""
        if self._since_best >= self.patience and self.cuts < self.max_cuts:
            self.cuts += 1
            self._since_best = 0
            return True
        return False

    @property
    def is_done(self) -> bool:
        exhausted = self.cuts >= self.max_cuts and self._since_best >= self.patience
        return exhausted or self.reports >= self.max_reports
