"""Fitting the calibration of what `std` serves, from the held-out residuals it chose it by.

A single family: its validation residuals divided by its held-out spread (split-conformal
scaling of the family's own spread, or of a constant where it has none). A blend: its exact
out-of-fold residuals once every member is cross-validated, a constant per output; before that,
the members' constant scales averaged with the blend's weights. Either way the calibration also
keeps the training inputs' bounds and the training targets' spread (what a row out of range is
given). Imports numpy, `sgt.ml.base` and the numerics only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgt.ml.base import Predictor, Residuals
from sgt.ml.numerics.calibration import (
    Calibration,
    conformal_scale,
    input_bounds,
    served_resolution,
)


def calibrate_single(
    predictor: Predictor,
    residuals: Residuals,
    *,
    inputs: np.ndarray,
    targets: np.ndarray,
    target_scale: np.ndarray,
) -> Calibration | None:
    """The calibration of `predictor` served alone; None without held-out rows."""
    rows, standardised = residuals
    if len(rows) == 0:
        return None
    errors = standardised * target_scale
    spread = predictor.held_out_spread(inputs, rows)
    if spread is None:
        spread = np.ones_like(errors)
    resolution = served_resolution(targets)
    return _calibration(conformal_scale(errors, spread, resolution=resolution), inputs, targets)


def calibrate_blend(
    *,
    weights: Sequence[float],
    member_residuals: Sequence[Residuals],
    out_of_fold: Sequence[np.ndarray] | None,
    inputs: np.ndarray,
    targets: np.ndarray,
    target_scale: np.ndarray,
) -> Calibration | None:
    """A blend's constant calibration; `out_of_fold` (one (rows, out) array per member, all
    rows) when every member has been cross-validated, else None."""
    share = np.asarray(weights, dtype=np.float64)
    resolution = served_resolution(targets)
    if out_of_fold is not None:
        blended = np.tensordot(share, np.stack(list(out_of_fold)), axes=1) * target_scale
        scale = conformal_scale(blended, np.ones_like(blended), resolution=resolution)
        return _calibration(scale, inputs, targets)
    scales = []
    for rows, standardised in member_residuals:
        if len(rows) == 0:
            return None
        errors = standardised * target_scale
        scales.append(conformal_scale(errors, np.ones_like(errors), resolution=resolution))
    return _calibration(np.tensordot(share, np.stack(scales), axes=1), inputs, targets)


def _calibration(scale: np.ndarray, inputs: np.ndarray, targets: np.ndarray) -> Calibration:
    low, high = input_bounds(inputs)
    prior = np.asarray(targets, dtype=np.float64).std(axis=0)
    return Calibration(scale, low, high, prior=prior)
