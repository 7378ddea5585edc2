"""Calibrating predicted spreads on held-out residuals, and the rule for out-of-range inputs.

Pure numpy functions and one frozen record; no state, no torch. `sgt.ml.base.Predictor` uses
them for its default standard deviation; `std` fits a `Calibration` when it picks what to serve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The central interval a standard deviation is scaled for: mean ± Z_90 · std covers 90 %.
COVERAGE = 0.90
Z_90 = 1.6448536269514722
# A row is out of range when an input lies beyond the training rows' [min, max] by more than
# this fraction of that input's training range (docs/uncertainty.md).
RANGE_MARGIN = 0.1
# Spreads below this (relative to the target's scale) are raised to it before dividing, so a
# model that is certain on its own training rows cannot make the scale infinite.
_MIN_SPREAD = 1e-6
# Served numbers are float32: a prediction of target-sized values is exact only to about this
# fraction (8 ulps) of the targets' largest magnitude. Held-out errors are widened by it before
# the quantile, because on skin weights many rows share the quantile exactly (trees answer one
# small constant where most targets are exact zeros) and round-off of that size in the served
# mean and std left them all just outside: 3 of 17 outputs covered 0.2-2 % of their own
# held-out rows (docs/uncertainty.md).
FLOAT32_RESOLUTION = 1e-6


@dataclass(frozen=True)
class Calibration:
    """What a checkpoint keeps about its own reliability.

    `scale` (out_size,) multiplies the predictor's raw spread (or 1 where it has none) so that
    mean ± 1.645·std is a split-conformal 90 % interval on held-out rows; `low`, `high`
    (in_size,) are the per-input bounds of the training inputs, margins included; `prior`
    (out_size,) is the training targets' standard deviation, the least std a row out of range
    is given (None in checkpoints written before it).
    """

    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray
    prior: np.ndarray | None = None

    def served_std(self, inputs: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """The std served for `inputs` (n, in_size) whose raw spread is `spread` ((n, out_size),
        or (n, 1) of ones for a kind without one): the conformal `spread × scale`, raised
        towards the prior as the row leaves the training box (docs/uncertainty.md).

        Held-out rows, on which the scale is fitted, lie inside the box: outside it nothing
        bounds the error by what was seen, so there the std reverts to what not knowing the
        input gives, the targets' own spread, as a stationary GP's does far from its data. The
        reversion ramps over the margin, from none at the training rows' [min, max] of each
        input to all of the prior where `out_of_range` starts."""
        std = np.asarray(spread * self.scale, dtype=np.float64)
        if self.prior is None:
            return std
        floor = _beyond_training(inputs, self.low, self.high)[:, None] * self.prior
        return np.asarray(np.maximum(std, floor), dtype=np.float64)

    def to_state(self) -> dict[str, list[float]]:
        """Plain lists for a checkpoint (never code, never numpy objects)."""
        state = {
            "scale": [float(v) for v in self.scale],
            "low": [float(v) for v in self.low],
            "high": [float(v) for v in self.high],
        }
        if self.prior is not None:
            state["prior"] = [float(v) for v in self.prior]
        return state

    @classmethod
    def from_state(cls, state: object) -> Calibration | None:
        """Inverse of `to_state`; None for anything else (an old or foreign checkpoint)."""
        if not isinstance(state, dict):
            return None
        try:
            arrays = [np.asarray(state[key], dtype=np.float64) for key in ("scale", "low", "high")]
            prior = None if "prior" not in state else np.asarray(state["prior"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if any(array.ndim != 1 for array in arrays) or arrays[1].shape != arrays[2].shape:
            return None
        if prior is not None and prior.shape != arrays[0].shape:
            return None
        scale, low, high = arrays
        return cls(scale, low, high, prior=prior)


def input_bounds(inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-input [min − m·range, max + m·range] of the training inputs (m = RANGE_MARGIN)."""
    rows = np.asarray(inputs, dtype=np.float64)
    if rows.shape[0] == 0:
        width = rows.shape[1]
        return np.full(width, -np.inf), np.full(width, np.inf)
    low, high = rows.min(axis=0), rows.max(axis=0)
    margin = RANGE_MARGIN * (high - low)
    # A constant input tolerates round-off only.
    slack = 1e-6 * np.maximum(1.0, np.abs(low))
    return low - margin - slack, high + margin + slack


def _beyond_training(inputs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(n,) in [0, 1]: how far each row goes past the training rows' [min, max] into the margin,
    at its farthest input; 1 at the out-of-range bounds [low, high] and beyond."""
    rows = np.asarray(inputs, dtype=np.float64)
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        return np.zeros(rows.shape[0])
    # [low, high] is [min, max] widened by RANGE_MARGIN of the range each side (input_bounds).
    margin = (high - low) * RANGE_MARGIN / (1.0 + 2.0 * RANGE_MARGIN)
    known = np.isfinite(margin) & (margin > 0)  # bounds of no training rows are infinite
    margin = np.where(known, margin, 1.0)
    past = np.maximum(rows - (high - margin), (low + margin) - rows) / margin
    past = np.where(known, past, 0.0)
    return np.asarray(np.clip(past.max(axis=1), 0.0, 1.0), dtype=np.float64)


def rows_out_of_range(inputs: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(n,) booleans: any input of the row outside its [low, high]."""
    rows = np.asarray(inputs, dtype=np.float64)
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(((rows < low) | (rows > high)).any(axis=1), dtype=bool)


def conformal_scale(
    residuals: np.ndarray, spreads: np.ndarray, *, resolution: np.ndarray | float = 0.0
) -> np.ndarray:
    """Per-output factor c such that |residual| ≤ 1.645·c·spread on the split-conformal 90 %
    quantile of the held-out rows: the ⌈(n+1)·0.9⌉-th smallest ratio |r| / spread.

    `residuals` and `spreads` are (n, out) in the same units; n ≥ 1. `resolution` (per output, in
    the same units; `served_resolution`) is added to every |residual|, so that a row exactly at
    the quantile stays inside once mean and std are served as float32. With fewer than 10 rows
    the ratios of all outputs are pooled (one factor), since a per-output quantile of a handful
    of rows is mostly noise."""
    errors = np.abs(np.asarray(residuals, dtype=np.float64)) + resolution
    ratios = errors / np.maximum(spreads, _MIN_SPREAD)
    rows, outputs = ratios.shape
    if rows < 10:
        return np.full(outputs, _quantile(ratios.ravel()) / Z_90)
    return np.array([_quantile(ratios[:, j]) / Z_90 for j in range(outputs)])


def served_resolution(targets: np.ndarray) -> np.ndarray:
    """(out,) the float32 round-off a served prediction of these targets may carry, per output."""
    values = np.asarray(targets, dtype=np.float64)
    if values.shape[0] == 0:
        return np.zeros(values.shape[1])
    return np.asarray(FLOAT32_RESOLUTION * np.abs(values).max(axis=0), dtype=np.float64)


def _quantile(values: np.ndarray) -> float:
    ordered = np.sort(values)
    rank = min(len(ordered), math.ceil((len(ordered) + 1) * COVERAGE))
    return float(ordered[rank - 1])
