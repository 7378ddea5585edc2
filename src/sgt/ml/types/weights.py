"""The `weights` model type: predictions that are skin weights (non-negative, rows summing to 1).

It trains exactly what its inner type trains (`std`, from the registry) on the raw targets and
passes every prediction through the Euclidean projection onto the probability simplex
(`sgt.ml.numerics.simplex`), optionally keeping at most `max_influences` non-zero entries a row.
The projection holds for whichever family or blend the inner type serves, by construction, and
costs no accuracy: a projected row is never farther from a true weight row than the prediction
was (docs/skinning.md). A softmax would need a log-ratio target, which has no value at the
exact zeros skin weights are made of. The checkpoint wraps the inner checkpoint with
`max_influences`. Imports numpy, torch (a checkpoint field), `sgt.ml.base`,
`sgt.ml.checkpoints` and the numerics; never a family module or the registry.
"""

from __future__ import annotations

import numpy as np

from sgt.ml.base import ModelShape, ModelType, Predictor, Residuals, TrainingProgress, TrainingRun
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint, unpack_checkpoint
from sgt.ml.numerics.simplex import project_to_simplex

KIND = "weights"


class WeightsPredictor(Predictor):
    """The inner predictor's rows projected onto the simplex (k-sparse with `max_influences`)."""

    kind = KIND

    def __init__(self, inner: Predictor, *, max_influences: int | None) -> None:
        self.inner = inner
        self.shape = inner.shape
        self.max_influences = max_influences

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return project_to_simplex(self.inner.predict(inputs), max_nonzero=self.max_influences)

    # The uncertainty is the inner predictor's, calibrated on its held-out residuals before the
    # projection. The projection never moves a row farther from a valid weight row (in norm over
    # the row, not entry by entry), so those intervals do not flatter the projected rows;
    # coverage measured in docs/uncertainty.md.
    def predict_std(self, inputs: np.ndarray) -> np.ndarray:
        return self.inner.predict_std(inputs)

    def predict_with_std(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.inner.predict_with_std(inputs)
        return project_to_simplex(mean, max_nonzero=self.max_influences), std

    def out_of_range(self, inputs: np.ndarray) -> np.ndarray:
        return self.inner.out_of_range(inputs)

    def suggest_rows(self, candidates: np.ndarray, k: int) -> list[int]:
        return self.inner.suggest_rows(candidates, k)

    def to_bytes(self) -> bytes:
        payload = {"inner": self.inner.to_bytes(), "max_influences": self.max_influences or 0}
        return pack_checkpoint(kind=KIND, shape=self.shape, payload=payload)


class WeightsRun(TrainingRun):
    """The inner type's run; its best weights are served through the projection."""

    def __init__(self, inner: TrainingRun, *, max_influences: int | None) -> None:
        self.inner = inner
        self.max_influences = max_influences

    def step(self) -> TrainingProgress:
        return self.inner.step()

    def best(self) -> Predictor:
        return WeightsPredictor(self.inner.best(), max_influences=self.max_influences)

    def validation_residuals(self) -> Residuals | None:
        return self.inner.validation_residuals()


class WeightsModelType(ModelType):
    """`weights` over `inner`; `max_influences` (None: no bound) caps the non-zero entries."""

    name = "weights"
    description = (
        "Skin weights: every predicted row is non-negative and sums to 1. Trains as std does and "
        "projects each prediction onto the probability simplex (the nearest valid row, exact "
        "zeros kept). With max_influences = k at create, each row has at most k non-zero "
        "entries (the k largest, projected again)."
    )

    def __init__(self, *, inner: ModelType, max_influences: int | None = None) -> None:
        self.inner = inner
        self.max_influences = max_influences

    def limited_to(self, max_influences: int | None) -> WeightsModelType:
        """The same type with at most `max_influences` non-zero entries a row."""
        return WeightsModelType(inner=self.inner, max_influences=max_influences)

    def parameter_count(self, shape: ModelShape) -> int:
        return self.inner.parameter_count(shape)

    def initial(self, shape: ModelShape, *, seed: int) -> WeightsPredictor:
        return WeightsPredictor(
            self.inner.initial(shape, seed=seed), max_influences=self.max_influences
        )

    def load(self, data: bytes, *, device: str) -> WeightsPredictor:
        envelope = unpack_checkpoint(data, device=device, kind=KIND)
        inner, limit = envelope.payload.get("inner"), envelope.payload.get("max_influences")
        if not isinstance(inner, bytes) or not isinstance(limit, int):
            raise CheckpointUnreadable("weights checkpoint lacks its inner model or its limit")
        return WeightsPredictor(self.inner.load(inner, device=device), max_influences=limit or None)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> WeightsRun:
        if isinstance(start, WeightsPredictor):
            start = start.inner
        run = self.inner.start_training(
            shape, inputs, targets, start=start, seed=seed, device=device
        )
        return WeightsRun(run, max_influences=self.max_influences)
