"""The interfaces every model type, training run, predictor and model family implements.

A model type turns (inputs, targets) into a `Predictor` through a `TrainingRun` it starts. The
trainer (`sgt.training`) drives runs and stores `Predictor.to_bytes()` as checkpoints; the API
loads them back with `ModelType.load` and calls `predict`. Neither side knows which type it holds.
`sgt.ml.registry` lists the implementations. This module imports numpy, the standard library and
the pure `sgt.ml.numerics.calibration` and `.selection`, nothing else of `sgt.ml`:
implementations import it, never the other way round.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from sgt.ml.numerics.calibration import Calibration, rows_out_of_range
from sgt.ml.numerics.selection import spread_weighted_farthest_batch

# (row indices, residuals on standardised targets, one row per index): how a run's best weights
# err on rows they were not fitted to. Every run standardises its targets per column as
# `sgt.ml.numerics.standardiser.Standardiser.fit(targets)` over all the rows it was given, so
# residuals times that scale are in the units of the targets (what the training status shows).
Residuals = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class ModelShape:
    """Input and output widths of a model."""

    in_size: int
    out_size: int


@dataclass(frozen=True)
class TrainingProgress:
    """What a run reports after each `step`.

    `steps` counts optimisation steps since the run started; losses are mean squared errors on
    standardised targets (comparable across models); `has_improved` says the best weights changed
    since the previous report (a checkpoint is worth writing); `is_converged` says further steps
    would not help, so the trainer stops spending CPU on the model.
    """

    steps: int
    train_loss: float
    val_loss: float | None
    has_improved: bool
    is_converged: bool


class Predictor(ABC):
    """Frozen weights that answer predictions: exactly what a checkpoint holds.

    Every implementation sets `kind` (the family that wrote the weights, as stored in the
    checkpoint: "gp", "mlp", "blend", ...) and `shape` (the widths it maps between).
    """

    kind: str
    shape: ModelShape
    # Fitted on held-out residuals by the run that chose these weights (`std`), stored in the
    # checkpoint by passing `calibration=self.calibration` to `pack_checkpoint`; None for an
    # uncalibrated predictor (an old checkpoint, a type trained outside `std`).
    calibration: Calibration | None = None

    @abstractmethod
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Map float32 (n, in_size) to float32 (n, out_size); n may be 0; deterministic."""

    def raw_spread(self, inputs: np.ndarray) -> np.ndarray | None:
        """The family's own uncalibrated spread (n, out_size) in target units (a GP's posterior
        standard deviation, an ensemble's member spread), or None where it has none (default)."""
        return None

    def held_out_spread(self, inputs: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
        """The raw spread at training rows `rows` (indices into the training `inputs`) as if they
        had not been fitted: what calibration divides held-out residuals by. Default: the raw
        spread there (right for families whose validation rows were held out of training)."""
        return self.raw_spread(inputs[rows])

    def predict_std(self, inputs: np.ndarray) -> np.ndarray:
        """Standard deviation (n, out_size) float32 of each prediction, calibrated so that
        mean ± 1.645·std is a 90 % interval.

        Default, for every kind: the raw spread (or 1 where the kind has none) times the
        calibration's per-output scale, which makes it a split-conformal interval on the held-out
        residuals of the run that chose the weights; a kind without a spread thus answers a
        constant per output. Outside the training rows' range it rises to the training
        targets' spread (`Calibration.served_std`). Uncalibrated (an old checkpoint): the raw
        spread unscaled, or zeros where the kind has none (docs/uncertainty.md)."""
        spread = self.raw_spread(inputs)
        if self.calibration is None:
            if spread is None:
                return np.zeros((len(inputs), self.shape.out_size), dtype=np.float32)
            return np.asarray(spread, dtype=np.float32)
        base = np.ones((len(inputs), 1)) if spread is None else spread
        return np.asarray(self.calibration.served_std(inputs, base), dtype=np.float32)

    def predict_with_std(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(`predict`, `predict_std`) of the same rows; a kind whose two share work (a GP's
        kernel) answers both in one pass."""
        return self.predict(inputs), self.predict_std(inputs)

    def out_of_range(self, inputs: np.ndarray) -> np.ndarray:
        """(n,) booleans: rows with an input outside the calibration's per-input bounds (the
        training range widened by 10 % each side); all False when uncalibrated."""
        if self.calibration is None:
            return np.zeros(len(inputs), dtype=bool)
        return rows_out_of_range(inputs, self.calibration.low, self.calibration.high)

    def suggest_rows(self, candidates: np.ndarray, k: int) -> list[int]:
        """k distinct indices into `candidates` (m, in_size), 1 ≤ k ≤ m: the rows whose labels
        would most improve the model, chosen as a batch that avoids redundancy.

        Default: greedy farthest-point in standardised input space (each input divided by its
        training range where calibrated, else by the candidates' spread), weighted by the mean
        over outputs of `predict_std` relative to its own mean (1 where the spread is zero)."""
        rows = np.asarray(candidates, dtype=np.float64)
        if self.calibration is not None:
            width = self.calibration.high - self.calibration.low
        else:
            width = rows.std(axis=0)
        standardised = rows / np.where(np.isfinite(width) & (width > 0), width, 1.0)
        deviation = self.predict_std(np.asarray(candidates, dtype=np.float32)).astype(np.float64)
        typical = deviation.mean(axis=0)
        relative = deviation / np.where(typical > 0, typical, 1.0)
        spread = relative.mean(axis=1) if relative.size else np.ones(len(rows))
        return spread_weighted_farthest_batch(
            standardised=standardised, spread=np.where(spread > 0, spread, 1.0), k=k
        )

    @abstractmethod
    def to_bytes(self) -> bytes:
        """Serialise for storage; `ModelType.load` reads it back on any device."""


class TrainingRun(ABC):
    """One training of one model on a fixed set of samples, advanced step by step."""

    @abstractmethod
    def step(self) -> TrainingProgress:
        """Do a bounded amount of work (well under a second of CPU at typical sizes)."""

    @abstractmethod
    def best(self) -> Predictor:
        """The best weights so far (by validation error where there is a validation split)."""

    def validation_residuals(self) -> Residuals | None:
        """How the best weights err on rows they were not fitted to (held-out, leave-one-out or
        out-of-bag rows), for `std` to compare families on and for the training status's error
        figures; None until there are such rows, and by default (a run that validates nothing).
        Cheap enough to call with every checkpoint."""
        return None


class ModelType(ABC):
    """A kind of model users can pick by name in `create_sgt_model`."""

    name: str
    description: str

    @abstractmethod
    def parameter_count(self, shape: ModelShape) -> int:
        """Upper bound of the trainable parameters a model of this shape allocates."""

    @abstractmethod
    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        """Untrained weights: what `run` answers before the first checkpoint."""

    @abstractmethod
    def load(self, data: bytes, *, device: str) -> Predictor:
        """Read a checkpoint written by `Predictor.to_bytes`, onto `device` ("cpu" or "cuda")."""

    @abstractmethod
    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> TrainingRun:
        """Begin training on float32 samples, from `start`'s weights when given."""


class PayloadLoader(Protocol):
    def __call__(self, shape: ModelShape, payload: dict[str, Any], *, device: str) -> Predictor: ...


@dataclass(frozen=True)
class Family:
    """A model family `std` may train as one of its candidates and serve (alone or blended).

    `model_type` trains the candidate; `load_payload` rebuilds its predictor from the payload of a
    checkpoint of this `kind`. It is a candidate on `min_rows` to `max_rows` rows (None: no bound).
    `default_rank` orders the families `std` trusts when it serves one alone (lowest first);
    None means the family serves only within a blend.
    """

    kind: str
    model_type: ModelType
    load_payload: PayloadLoader
    min_rows: int = 0
    max_rows: int | None = None
    default_rank: int | None = None

    def is_candidate(self, rows: int, *, blends: bool) -> bool:
        """Whether `std` trains this family on `rows` rows (`blends`: it may serve a blend)."""
        fits = self.min_rows <= rows and (self.max_rows is None or rows <= self.max_rows)
        return fits and (self.default_rank is not None or blends)
