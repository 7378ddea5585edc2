"""The `std` model type: the robust default, which picks its model family from the data.

Candidates are trained one after another on the same standardised data: an exact GP (when the
rows fit its budget), ridge regression, an MLP ensemble and, on few rows, a forest of randomised
trees. On up to a few hundred rows (BLEND_MAX_ROWS) `std` serves a blend of them: each
candidate is also retrained on 5 folds, and the blend's weights are those whose average of the
out-of-fold predictions errs least (stacking). On more rows the GP (else the ensemble) is the
default; another candidate replaces it only where its validation error is lower by more than one
standard error of the paired per-row difference. Imports the other model types of this package.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Protocol, cast

import numpy as np

from sgt.ml.base import (
    ModelShape,
    ModelType,
    Predictor,
    TrainingProgress,
    TrainingRun,
    register_model_type,
)
from sgt.ml.types import blend, forest, gp, linear, mlp
from sgt.ml.types.checkpoints import CheckpointUnreadable, Envelope, unpack_checkpoint
from sgt.ml.types.fitting import MIN_ROWS_FOR_VALIDATION
from sgt.ml.types.standardiser import Standardiser

# Four narrow members cost about 1.4 times one 128-wide MLP to serve.
ENSEMBLE = mlp.MlpConfig(members=4, width=64)
# Up to this many rows `std` serves a stacked blend of its candidates rather than one of them: on
# 15- to 120-row samples of four real data sets (bench/small_data.py) the GP it kept by default was
# the worst of the three families, and the blend was within 5 % of the best one or better; on 240
# and 360 rows it was 8-15 % better than the GP on cancer and within 0.6 % of it on diabetes and
# friedman1. Beyond a few hundred rows the 5-fold retrainings cost more (the GP's grow with the
# cube of the rows).
BLEND_MAX_ROWS = 500
# Trees join the blend on up to this many rows only: each tree's bootstrap sample holds at most
# forest's max_rows (150) of them, and on 240 and 360 rows adding it left the blends' errors
# unchanged (to 4 digits).
FOREST_MAX_ROWS = forest.FOREST.config.max_rows
# Members whose share of a blend would fall below this are left out (they cost serving time).
MIN_BLEND_SHARE = 1e-3
# A candidate whose out-of-fold MSE exceeds the best one's by more than this factor gets no
# share of the stacked blend. In bench/small_data.py a forest with 7 times the best error took a
# 0.15 share on one 120-row cancer sample and doubled the blend's test error; cut-offs of 3 and 5
# did equally well elsewhere.
MAX_STACKED_ERROR_RATIO = 5.0
# Once every candidate has trained on all rows, one whose own validation MSE is more than this many
# times the best one's is left out of the blend and not cross-validated: on bench/small_data.py's
# samples no candidate that got a share had more than 8.2 times the best, and on a few hundred rows
# of a smooth function the MLP ensemble's fold runs took two thirds of `std`'s time for no share.
SCREEN_ERROR_RATIO = 10.0
# A blend's weights come from this many folds of cross-validation, each candidate retrained
# without the fold: a candidate's own validation error is optimistic on few rows (the GP's
# hyper-parameters and the MLP's early stopping were chosen on the same rows).
BLEND_FOLDS = 5


class CandidateRun(Protocol):
    def step(self) -> TrainingProgress: ...

    def best(self) -> Predictor: ...

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None: ...


class Candidate:
    """One model family's run inside a `std` run, and its latest validation residuals."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.run: CandidateRun | None = None
        self.residuals: tuple[np.ndarray, np.ndarray] | None = None
        # Residuals of the rows predicted by runs that did not see them, filled fold by fold.
        self.out_of_fold: np.ndarray | None = None
        self.folds_left = 0
        self.is_left_out = False


def candidate_kinds(rows: int, start: Predictor | None) -> list[str]:
    """Which families to train, in order: the start's family first so resuming is quick."""
    kinds = []
    # Up to twice its row budget the GP, conditioned on a random subset, may still win.
    if rows <= 2 * gp.GP.config.max_rows:
        kinds.append(gp.KIND)
    kinds.append(linear.KIND)
    if rows >= MIN_ROWS_FOR_VALIDATION:
        kinds.append(mlp.KIND)
    # Trees only ever serve in a blend: alone they are rarely the best family.
    if MIN_ROWS_FOR_VALIDATION <= rows <= min(FOREST_MAX_ROWS, BLEND_MAX_ROWS):
        kinds.append(forest.KIND)
    start_kind = getattr(start, "kind", None)
    if start_kind in kinds:
        kinds.remove(start_kind)
        kinds.insert(0, start_kind)
    return kinds


def squared_errors(residuals: np.ndarray) -> np.ndarray:
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


class StdRun(TrainingRun):
    """Trains each candidate to convergence in turn (then, on few rows, each again on every
    cross-validation fold); `best` is the current winner's best, or the blend."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> None:
        self.shape = shape
        self._inputs, self._targets = inputs, targets
        self._seed, self._device = seed, device
        self._start = start
        kinds = candidate_kinds(len(inputs), start)
        self._candidates = [Candidate(kind) for kind in kinds]
        # The family trusted unless clearly beaten: the GP where it runs, else the ensemble.
        self._default_kind = next(
            kind for kind in (gp.KIND, mlp.KIND, linear.KIND) if kind in kinds
        )
        self._blends = len(inputs) <= BLEND_MAX_ROWS
        # Out-of-fold residuals are scaled as each candidate scales its own.
        self._target_scale = Standardiser.fit(targets, device="cpu").scale.double().numpy()
        self._fold_jobs = self._plan_folds() if self._blends else []
        self._fold_index = 0
        self._fold_run: CandidateRun | None = None
        self._current = 0
        self._winner: Candidate | None = None
        self._chosen_kind: str | None = None
        # Until a candidate is validated the start's weights stand (if they fit this shape).
        self._best: Predictor | None = start if getattr(start, "shape", None) == shape else None
        self._val_loss: float | None = None
        self._steps = 0
        self._train_loss = math.nan

    def _plan_folds(self) -> list[tuple[Candidate, np.ndarray]]:
        """(candidate, held-out rows) for every fold of every candidate; none on tiny data."""
        rows = len(self._inputs)
        if rows < MIN_ROWS_FOR_VALIDATION:
            return []
        order = np.random.default_rng(self._seed).permutation(rows)
        folds = np.array_split(order, BLEND_FOLDS)
        for candidate in self._candidates:
            candidate.out_of_fold = np.zeros(self._targets.shape, dtype=np.float64)
            candidate.folds_left = len(folds)
        return [(candidate, np.sort(fold)) for candidate in self._candidates for fold in folds]

    def _make_run(self, kind: str, *, rows: np.ndarray | None = None) -> CandidateRun:
        """A run of family `kind` on all rows (resuming from the start's weights where it can),
        or from scratch on `rows` alone for a cross-validation fold."""
        start = self._start
        if isinstance(start, blend.BlendPredictor):
            start = start.member(kind)
        is_resumable = (
            rows is None
            and getattr(start, "kind", None) == kind
            and getattr(start, "shape", None) == self.shape
        )
        warm = start if is_resumable else None
        inputs, targets = self._inputs, self._targets
        if rows is not None:
            inputs, targets = inputs[rows], targets[rows]
        run = _FAMILIES[kind].start_training(
            self.shape, inputs, targets, start=warm, seed=self._seed, device=self._device
        )
        # Every family's run reports its validation residuals (gp, linear, mlp, forest).
        return cast(CandidateRun, run)

    def step(self) -> TrainingProgress:
        has_improved = False
        if self._current < len(self._candidates):
            candidate = self._candidates[self._current]
            if candidate.run is None:
                candidate.run = self._make_run(candidate.kind)
            progress = candidate.run.step()
            self._steps += 1
            self._train_loss = progress.train_loss
            if progress.has_improved or progress.is_converged:
                candidate.residuals = candidate.run.validation_residuals()
                if progress.is_converged and self._current == len(self._candidates) - 1:
                    self._leave_out_far_worse()
                has_improved = self._choose_winner(improved=candidate)
            if progress.is_converged:
                self._current += 1
        elif self._fold_index < len(self._fold_jobs):
            self._steps += 1
            has_improved = self._step_fold()
        return TrainingProgress(
            steps=self._steps,
            train_loss=self._train_loss,
            val_loss=self._val_loss,
            has_improved=has_improved,
            is_converged=self._current >= len(self._candidates)
            and self._fold_index >= len(self._fold_jobs),
        )

    def _leave_out_far_worse(self) -> None:
        """Before cross-validating for the blend, drop the candidates far worse than the best on
        their own validation rows, and their fold runs; with one candidate left there is
        nothing to weigh, so no fold runs at all."""
        scored = [candidate for candidate in self._candidates if candidate.residuals is not None]
        if not self._blends or not scored:
            return
        best = min(_validation_mse(candidate) for candidate in scored)
        for candidate in scored:
            candidate.is_left_out = _validation_mse(candidate) > SCREEN_ERROR_RATIO * best
        kept = [candidate for candidate in scored if not candidate.is_left_out]
        self._fold_jobs = [job for job in self._fold_jobs if len(kept) > 1 and job[0] in kept]

    def _step_fold(self) -> bool:
        """Advance the current fold's run; once a candidate's last fold is done, its
        out-of-fold residuals replace its own validation residuals and the blend is redone."""
        candidate, held_out = self._fold_jobs[self._fold_index]
        if self._fold_run is None:
            kept = np.setdiff1d(np.arange(len(self._inputs)), held_out)
            self._fold_run = self._make_run(candidate.kind, rows=kept)
        if not self._fold_run.step().is_converged:
            return False
        predicted = self._fold_run.best().predict(self._inputs[held_out]).astype(np.float64)
        self._fold_run = None
        self._fold_index += 1
        assert candidate.out_of_fold is not None
        residuals = (predicted - self._targets[held_out]) / self._target_scale
        candidate.out_of_fold[held_out] = residuals
        candidate.folds_left -= 1
        if candidate.folds_left:
            return False
        candidate.residuals = (np.arange(len(self._inputs)), candidate.out_of_fold)
        return self._choose_winner(improved=candidate)

    def _choose_winner(self, *, improved: Candidate) -> bool:
        scored = [
            candidate
            for candidate in self._candidates
            if candidate.residuals is not None and not candidate.is_left_out
        ]
        if not scored:
            return False
        if self._blends and len(scored) > 1:
            self._blend(scored)
            return True
        defaults = [candidate for candidate in scored if candidate.kind == self._default_kind]
        winner = defaults[0] if defaults else scored[0]
        for challenger in scored:
            if challenger is not winner and _margin(challenger, winner) > 0.0:
                winner = challenger
        if winner is self._winner and winner is not improved:
            return False
        self._winner = winner
        self._chosen_kind = winner.kind
        assert winner.run is not None and winner.residuals is not None
        self._best = winner.run.best()
        self._val_loss = _validation_mse(winner)
        return True

    def _blend(self, scored: list[Candidate]) -> None:
        """Serve the scored candidates averaged: once all are cross-validated, with the weights
        whose blend of out-of-fold predictions errs least (stacking); until then with weights
        proportional to 1 / validation MSE^2."""
        errors = np.array([_validation_mse(candidate) for candidate in scored])
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
        members = []
        for candidate in itertools.compress(scored, kept):
            assert candidate.run is not None
            members.append(candidate.run.best())
        weights = shares[kept] / shares[kept].sum()
        self._winner = None
        self._best = (
            members[0]
            if len(members) == 1
            else blend.BlendPredictor(shape=self.shape, members=members, weights=weights.tolist())
        )
        self._chosen_kind = getattr(self._best, "kind", None)
        if is_stacked:
            # The blend's own out-of-fold error.
            residuals = np.stack(list(itertools.compress(cross_validated, kept)))
            self._val_loss = float(np.mean(np.square(np.tensordot(weights, residuals, axes=1))))
        else:
            # The MSE of an average is at most the same average of the members' MSEs (Jensen).
            self._val_loss = float(np.dot(weights, errors[kept]))

    @property
    def chosen_kind(self) -> str | None:
        """The family (or "blend") whose weights `best` returns, once one has been validated."""
        return self._chosen_kind

    def best(self) -> Predictor:
        if self._best is None:
            self._best = STD.initial(self.shape, seed=self._seed)
        return self._best


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


def _validation_mse(candidate: Candidate) -> float:
    assert candidate.residuals is not None
    return float(np.mean(candidate.residuals[1] ** 2))


def _margin(challenger: Candidate, default: Candidate) -> float:
    assert challenger.residuals is not None and default.residuals is not None
    return beats(challenger.residuals, default.residuals)


def load_predictor(data: bytes, *, device: str) -> Predictor:
    """Read any checkpoint `std` may have written (a GP, ridge, MLP ensemble, forest or a
    blend of them)."""
    envelope = unpack_checkpoint(data, device=device)
    if envelope.kind == blend.KIND:
        return blend.load_blend_payload(
            envelope.shape,
            envelope.payload,
            device=device,
            load_member=lambda member: _load_family(
                unpack_checkpoint(member, device=device), device=device
            ),
        )
    return _load_family(envelope, device=device)


def _load_family(envelope: Envelope, *, device: str) -> Predictor:
    """The predictor of one model family (a blend's members are never blends themselves)."""
    if envelope.kind == gp.KIND:
        return gp.load_gp_payload(envelope.shape, envelope.payload, device=device)
    if envelope.kind == mlp.KIND:
        return mlp.load_mlp_payload(envelope.shape, envelope.payload, device=device)
    if envelope.kind == linear.KIND:
        return linear.load_linear_payload(envelope.shape, envelope.payload, device=device)
    if envelope.kind == forest.KIND:
        return forest.load_forest_payload(envelope.shape, envelope.payload, device=device)
    raise CheckpointUnreadable(f"checkpoint holds an unknown model kind '{envelope.kind}'")


class StdModelType(ModelType):
    name = "std"
    description = (
        "The default, and the right choice unless you know better. Inputs and targets are "
        "standardised from the training data; an exact Gaussian process (on up to 1500 rows), "
        "ridge regression and an ensemble of 4 MLPs (AdamW, weight decay, best-validation "
        "weights, early stopping) are each trained, joined by a forest of 100 randomised trees "
        "up to 150 rows. Up to 500 rows it serves their weighted average, the weights chosen by "
        "5-fold cross-validation (stacking); with more, the GP (the ensemble beyond 3000 rows) "
        "is kept unless another is clearly better on validation rows. Strong from a dozen rows "
        "to many thousands; more samples resume from the current weights."
    )

    def parameter_count(self, shape: ModelShape) -> int:
        # All candidates are in memory together while training, and a blend keeps them all.
        return (
            gp.GP.parameter_count(shape)
            + linear.LINEAR.parameter_count(shape)
            + _ENSEMBLE_TYPE.parameter_count(shape)
            + forest.FOREST.parameter_count(shape)
        )

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        return _ENSEMBLE_TYPE.initial(shape, seed=seed)

    def load(self, data: bytes, *, device: str) -> Predictor:
        return load_predictor(data, device=device)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> StdRun:
        return StdRun(
            shape=shape, inputs=inputs, targets=targets, start=start, seed=seed, device=device
        )


_ENSEMBLE_TYPE = mlp.MlpModelType(
    name="std-ensemble", description="std's MLP ensemble", config=ENSEMBLE
)
# The model type that trains each candidate family.
_FAMILIES: dict[str, ModelType] = {
    gp.KIND: gp.GP,
    linear.KIND: linear.LINEAR,
    mlp.KIND: _ENSEMBLE_TYPE,
    forest.KIND: forest.FOREST,
}
STD = StdModelType()
register_model_type(STD)
