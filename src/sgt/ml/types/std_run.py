"""The two-phase run behind `std`: each candidate family trained to convergence on all rows in
turn, then (on few rows) each again on every cross-validation fold for the blend's weights.

What to train and what to serve is decided in `std_choice`. Imports numpy, `sgt.ml.base`, the
numerics, `blend` and `std_choice`; the families arrive as arguments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from sgt.ml.base import (
    Family,
    ModelShape,
    ModelType,
    Predictor,
    Residuals,
    TrainingProgress,
    TrainingRun,
)
from sgt.ml.numerics.fitting import MIN_ROWS_FOR_VALIDATION
from sgt.ml.numerics.standardiser import Standardiser
from sgt.ml.types.blend import BlendPredictor
from sgt.ml.types.std_calibration import calibrate_blend, calibrate_single
from sgt.ml.types.std_choice import (
    BLEND_MAX_ROWS,
    Candidate,
    candidate_kinds,
    default_kind,
    pick_alone,
    plan_blend,
    screen_far_worse,
)

# A blend's weights come from this many folds of cross-validation, each candidate retrained
# without the fold: a candidate's own validation error is optimistic on few rows (the GP's
# hyper-parameters and the MLP's early stopping were chosen on the same rows).
BLEND_FOLDS = 5


class StdRun(TrainingRun):
    """Trains each candidate to convergence in turn (then, on few rows, each again on every
    cross-validation fold); `best` is the current winner's best, or the blend."""

    def __init__(
        self,
        *,
        families: Mapping[str, Family],
        untrained: ModelType,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> None:
        self.shape = shape
        self._families, self._untrained = families, untrained
        self._inputs, self._targets = inputs, targets
        self._seed, self._device = seed, device
        self._start = start
        kinds = candidate_kinds(list(families.values()), len(inputs), start)
        self._candidates = [Candidate(kind) for kind in kinds]
        self._default_kind = default_kind(list(families.values()), kinds)
        self._blends = len(inputs) <= BLEND_MAX_ROWS
        # Out-of-fold residuals are scaled as each candidate scales its own.
        self._target_scale = Standardiser.fit(targets, device="cpu").scale.double().numpy()
        self._fold_jobs = self._plan_folds() if self._blends else []
        self._fold_index = 0
        self._fold_run: TrainingRun | None = None
        self._current = 0
        self._winner: Candidate | None = None
        self._chosen_kind: str | None = None
        # Until a candidate is validated the start's weights stand (if they fit this shape).
        self._best: Predictor | None = start if start is not None and start.shape == shape else None
        self._val_loss: float | None = None
        self._residuals: Residuals | None = None
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

    def _make_run(self, kind: str, *, rows: np.ndarray | None = None) -> TrainingRun:
        """A run of family `kind` on all rows (resuming from the start's weights where it can),
        or from scratch on `rows` alone for a cross-validation fold."""
        start = self._start
        if isinstance(start, BlendPredictor):
            start = start.member(kind)
        is_resumable = (
            rows is None and start is not None and start.kind == kind and start.shape == self.shape
        )
        warm = start if is_resumable else None
        inputs, targets = self._inputs, self._targets
        if rows is not None:
            inputs, targets = inputs[rows], targets[rows]
        return self._families[kind].model_type.start_training(
            self.shape, inputs, targets, start=warm, seed=self._seed, device=self._device
        )

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
        kept = screen_far_worse(scored)
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
        winner = pick_alone(scored, self._default_kind)
        if winner is self._winner and winner is not improved:
            return False
        self._winner = winner
        self._chosen_kind = winner.kind
        assert winner.run is not None
        self._best = winner.run.best()
        assert winner.residuals is not None
        self._best.calibration = calibrate_single(
            self._best,
            winner.residuals,
            inputs=self._inputs,
            targets=self._targets,
            target_scale=self._target_scale,
        )
        self._val_loss = winner.validation_mse
        self._residuals = winner.residuals
        return True

    def _blend(self, scored: list[Candidate]) -> None:
        """Serve the scored candidates averaged with the weights `plan_blend` gives."""
        plan = plan_blend(scored)
        members = []
        for candidate in plan.members:
            assert candidate.run is not None
            members.append(candidate.run.best())
        self._winner = None
        self._best = (
            members[0]
            if len(members) == 1
            else BlendPredictor(shape=self.shape, members=members, weights=plan.weights.tolist())
        )
        self._chosen_kind = self._best.kind
        self._val_loss = plan.val_loss
        self._residuals = plan.residuals
        out_of_fold = [c.out_of_fold for c in plan.members if c.folds_left == 0]
        is_stacked = len(self._fold_jobs) > 0 and len(out_of_fold) == len(plan.members)
        residuals = [c.residuals for c in plan.members if c.residuals is not None]
        if len(members) == 1:
            self._best.calibration = calibrate_single(
                self._best,
                residuals[0],
                inputs=self._inputs,
                targets=self._targets,
                target_scale=self._target_scale,
            )
            return
        self._best.calibration = calibrate_blend(
            weights=plan.weights.tolist(),
            member_residuals=residuals,
            out_of_fold=[o for o in out_of_fold if o is not None] if is_stacked else None,
            inputs=self._inputs,
            targets=self._targets,
            target_scale=self._target_scale,
        )

    @property
    def chosen_kind(self) -> str | None:
        """The family (or "blend") whose weights `best` returns, once one has been validated."""
        return self._chosen_kind

    def validation_residuals(self) -> Residuals | None:
        """The served weights' residuals: the winner's own (held-out, leave-one-out or
        out-of-bag rows), or the blend's, out-of-fold once cross-validated; None until a
        candidate is validated."""
        return self._residuals

    def best(self) -> Predictor:
        if self._best is None:
            self._best = self._untrained.initial(self.shape, seed=self._seed)
        return self._best
