"""How `std` chooses: which families it trains on how many rows, which one it serves alone, and
the weights of the blend it serves on few rows. Decisions on candidates' validation residuals;
the arithmetic is in `sgt.ml.numerics.stacking`. Imports numpy, `sgt.ml.base` and the numerics.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sgt.ml.base import Family, Predictor, Residuals, TrainingRun
from sgt.ml.numerics.stacking import beats, stacked_shares

# Up to this many rows `std` serves a stacked blend of its candidates rather than one of them;
# beyond a few hundred rows the 5-fold retrainings cost more than the blend gains (the GP's grow
# with the cube of the rows). Measured in docs/quality.md (`bench/small_data.py`).
BLEND_MAX_ROWS = 500
# Members whose share of a blend would fall below this are left out (they cost serving time).
MIN_BLEND_SHARE = 1e-3
# Once every candidate has trained on all rows, one whose own validation MSE is more than this many
# times the best one's is left out of the blend and not cross-validated: such candidates never
# got a share, and their fold runs cost time (docs/quality.md).
SCREEN_ERROR_RATIO = 10.0
# Served alone (beyond BLEND_MAX_ROWS), the default family gives way only to a candidate whose
# validation MSE is below its own divided by this. The validation rows are drawn from the rows
# trained on, so they cannot see a shift of the inputs: on skin weights (a mesh in one pose,
# predicted in another) the MLPs' validation MSE was 1.75x lower than the trees', and their RMSE
# on the other pose 1.8x higher (docs/skinning.md). A smooth target the MLPs truly fit better
# still passes (noise-free friedman1 on 5,000 rows: 137x lower).
SWITCH_ERROR_RATIO = 2.0


class Candidate:
    """One model family's run inside a `std` run, and its latest validation residuals."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.run: TrainingRun | None = None
        self.residuals: Residuals | None = None
        # Residuals of the rows predicted by runs that did not see them, filled fold by fold.
        self.out_of_fold: np.ndarray | None = None
        self.folds_left = 0
        self.is_left_out = False

    @property
    def validation_mse(self) -> float:
        assert self.residuals is not None
        return float(np.mean(self.residuals[1] ** 2))


@dataclass(frozen=True)
class BlendPlan:
    """The candidates a blend keeps, their weights (summing to 1), the blend's validation MSE and
    its validation residuals (the members' weighted, on the rows all of them were validated on;
    None when they share none)."""

    members: list[Candidate]
    weights: np.ndarray
    val_loss: float
    residuals: Residuals | None


def candidate_kinds(families: Sequence[Family], rows: int, start: Predictor | None) -> list[str]:
    """Which families to train, in registry order but the start's family first, so that
    resuming is quick."""
    blends = rows <= BLEND_MAX_ROWS
    kinds = [family.kind for family in families if family.is_candidate(rows, blends=blends)]
    if start is not None and start.kind in kinds:
        kinds.remove(start.kind)
        kinds.insert(0, start.kind)
    return kinds


def default_kind(families: Sequence[Family], kinds: Sequence[str]) -> str:
    """The family trusted unless clearly beaten: the best-ranked of `kinds`."""
    ranked = [f for f in families if f.kind in kinds and f.default_rank is not None]
    return min(ranked, key=lambda family: family.default_rank or 0).kind


def screen_far_worse(scored: list[Candidate]) -> list[Candidate]:
    """Mark the candidates far worse than the best on their own validation rows as left out;
    return the others."""
    best = min(candidate.validation_mse for candidate in scored)
    for candidate in scored:
        candidate.is_left_out = candidate.validation_mse > SCREEN_ERROR_RATIO * best
    return [candidate for candidate in scored if not candidate.is_left_out]


def pick_alone(scored: list[Candidate], default: str) -> Candidate:
    """The default family's candidate, unless another's validation MSE is below the default's
    divided by SWITCH_ERROR_RATIO; between others, the lower one by more than one standard
    error of the paired per-row difference."""
    defaults = [candidate for candidate in scored if candidate.kind == default]
    winner = defaults[0] if defaults else scored[0]
    for challenger in scored:
        if challenger is winner or _margin(challenger, winner) <= 0.0:
            continue
        ratio = SWITCH_ERROR_RATIO if winner.kind == default else 1.0
        if challenger.validation_mse * ratio < winner.validation_mse:
            winner = challenger
    return winner


def plan_blend(scored: list[Candidate]) -> BlendPlan:
    """Once all are cross-validated, the weights whose blend of out-of-fold predictions errs
    least (stacking); until then weights proportional to 1 / validation MSE^2."""
    errors = np.array([candidate.validation_mse for candidate in scored])
    cross_validated = [
        c.out_of_fold for c in scored if c.folds_left == 0 and c.out_of_fold is not None
    ]
    is_stacked = len(cross_validated) == len(scored)
    if is_stacked:
        shares = stacked_shares(cross_validated)
    else:
        shares = 1.0 / np.maximum(errors, 1e-12) ** 2
        shares /= shares.sum()
    kept = shares >= MIN_BLEND_SHARE
    weights = shares[kept] / shares[kept].sum()
    if is_stacked:
        # The blend's own out-of-fold error.
        residuals = np.stack(list(itertools.compress(cross_validated, kept)))
        val_loss = float(np.mean(np.square(np.tensordot(weights, residuals, axes=1))))
    else:
        # The MSE of an average is at most the same average of the members' MSEs (Jensen).
        val_loss = float(np.dot(weights, errors[kept]))
    members = list(itertools.compress(scored, kept))
    return BlendPlan(members, weights, val_loss, _blended_residuals(members, weights))


def _blended_residuals(members: list[Candidate], weights: np.ndarray) -> Residuals | None:
    """The blend's residual on each row every member was validated on: the weighted sum of
    theirs, since the blend's prediction is the weighted sum of the members'."""
    validated = [candidate.residuals for candidate in members if candidate.residuals is not None]
    if len(validated) < len(members):
        return None
    common = functools.reduce(np.intersect1d, [rows for rows, _ in validated])
    if not len(common):
        return None
    blended = np.zeros((len(common), validated[0][1].shape[1]), dtype=np.float64)
    for weight, (rows, residuals) in zip(weights, validated, strict=True):
        order = np.argsort(rows)
        blended += weight * residuals[order[np.searchsorted(rows, common, sorter=order)]]
    return common, blended


def _margin(challenger: Candidate, default: Candidate) -> float:
    assert challenger.residuals is not None and default.residuals is not None
    return beats(challenger.residuals, default.residuals)
