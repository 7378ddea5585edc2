"""The `linear` model type: ridge regression on standardised inputs, penalty chosen by exact
leave-one-out error. Also the linear candidate of `std` (`FAMILY`). Imports torch, numpy,
`sgt.ml.base`, `sgt.ml.checkpoints` and `sgt.ml.numerics`; never `sgt.ml.types` or the registry.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sgt.ml.base import (
    Family,
    ModelShape,
    ModelType,
    Predictor,
    TrainingProgress,
    TrainingRun,
)
from sgt.ml.checkpoints import pack_checkpoint, read_checkpoint
from sgt.ml.numerics.standardiser import Standardiser

KIND = "linear"
# Ridge penalties tried, relative to the row count (so the choice does not drift with n).
_PENALTIES = np.logspace(-6, 2, 33)
# Leave-one-out errors are measured on at most this many rows (the fit itself uses all).
_MAX_PROBE_ROWS = 4000
# Rows added to the normal equations per step.
_CHUNK_ROWS = 8192


class LinearPredictor(Predictor):
    """y = x @ weight + bias in raw units (standardisation folded in)."""

    kind = KIND

    def __init__(self, *, shape: ModelShape, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.shape = shape
        self.weight = weight
        self.bias = bias
        self.device = str(weight.device)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(inputs, dtype=np.float32)
        with torch.inference_mode():
            batch = torch.from_numpy(rows).to(self.device)
            outputs: np.ndarray = torch.addmm(self.bias, batch, self.weight).cpu().numpy()
            return outputs

    def to_bytes(self) -> bytes:
        payload = {"weight": self.weight.detach().cpu(), "bias": self.bias.detach().cpu()}
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_linear_payload(
    shape: ModelShape, payload: dict[str, object], *, device: str
) -> LinearPredictor:
    """Rebuild a `LinearPredictor` from a checkpoint payload."""
    weight, bias = payload["weight"], payload["bias"]
    assert isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor)
    return LinearPredictor(
        shape=shape, weight=weight.to(device, torch.float32), bias=bias.to(device, torch.float32)
    )


class RidgeFit:
    """Accumulates X'X and X'Y over row chunks (so each step stays short), then picks the penalty
    with the lowest exact leave-one-out error on (at most 4000 of) the rows."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray, *, seed: int) -> None:
        # torch rather than numpy: numpy's own BLAS threads fight torch's on a busy machine.
        self.x_scaler = Standardiser.fit(inputs, device="cpu")
        self.y_scaler = Standardiser.fit(targets, device="cpu")
        self._inputs, self._targets = inputs, targets
        self.probe = np.arange(len(inputs))
        if len(inputs) > _MAX_PROBE_ROWS:
            order = np.random.default_rng(seed).permutation(len(inputs))
            self.probe = np.sort(order[:_MAX_PROBE_ROWS])
        width, outputs = inputs.shape[1], targets.shape[1]
        self._gram = torch.zeros(width, width, dtype=torch.float64)
        self._cross = torch.zeros(width, outputs, dtype=torch.float64)
        self._done_rows = 0

    def _standardised(self, rows: np.ndarray | slice) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x_scaler.apply(torch.as_tensor(self._inputs[rows])).double()
        y = self.y_scaler.apply(torch.as_tensor(self._targets[rows])).double()
        return x, y

    def accumulate(self) -> bool:
        """Add the next chunk of rows; True once every row is in."""
        end = min(len(self._inputs), self._done_rows + _CHUNK_ROWS)
        x, y = self._standardised(slice(self._done_rows, end))
        self._gram += x.T @ x
        self._cross += x.T @ y
        self._done_rows = end
        return end >= len(self._inputs)

    def solve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw-unit (weight, bias) and the probe rows' leave-one-out residuals (standardised)."""
        eigenvalues, eigenvectors = torch.linalg.eigh(self._gram)
        eigenvalues = eigenvalues.clamp_min(0.0)
        x_probe, y_probe = self._standardised(self.probe)
        projected = x_probe @ eigenvectors
        along = eigenvectors.T @ self._cross
        best_error, best_penalty = math.inf, 0.0
        best_residuals = torch.zeros_like(y_probe)
        for penalty in _PENALTIES * max(len(self._inputs), 1):
            shrink = 1.0 / (eigenvalues + penalty)
            leverage = projected.square() @ shrink
            fitted = projected @ (along * shrink.unsqueeze(1))
            residuals = (y_probe - fitted) / (1.0 - leverage).clamp_min(1e-6).unsqueeze(1)
            error = float(residuals.square().mean()) if len(self.probe) else 0.0
            if error < best_error:
                best_error, best_penalty, best_residuals = error, float(penalty), residuals
        coefficients = eigenvectors @ (along / (eigenvalues + best_penalty).unsqueeze(1))
        weight = (
            coefficients / self.x_scaler.scale.double().unsqueeze(1) * self.y_scaler.scale.double()
        )
        bias = self.y_scaler.mean.double() - self.x_scaler.mean.double() @ weight
        return weight.numpy(), bias.numpy(), best_residuals.numpy()


class LinearRun(TrainingRun):
    """Closed form: steps accumulate the normal equations, the last one solves and converges."""

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
        self.device = device
        self._fit = RidgeFit(inputs, targets, seed=seed)
        # Answered until the fit is done, so that resuming never loses the current weights.
        self._start = start if start is not None and start.shape == shape else None
        self._best: LinearPredictor | None = None
        self.best_val_loss: float | None = None
        self._residuals: np.ndarray | None = None
        self._steps = 0

    def step(self) -> TrainingProgress:
        has_improved = False
        if self._best is None:
            self._steps += 1
            if self._fit.accumulate():
                weight, bias, self._residuals = self._fit.solve()
                self.best_val_loss = (
                    float(np.mean(self._residuals**2)) if self._residuals.size else 0.0
                )
                self._best = LinearPredictor(
                    shape=self.shape,
                    weight=torch.as_tensor(weight, dtype=torch.float32, device=self.device),
                    bias=torch.as_tensor(bias, dtype=torch.float32, device=self.device),
                )
                has_improved = True
        return TrainingProgress(
            steps=self._steps,
            train_loss=self.best_val_loss or 0.0,
            val_loss=self.best_val_loss,
            has_improved=has_improved,
            is_converged=self._best is not None,
        )

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(row indices, leave-one-out residuals on standardised targets) once fitted."""
        if self._residuals is None:
            return None
        return self._fit.probe, self._residuals

    def best(self) -> Predictor:
        if self._best is not None:
            return self._best
        return self._start if self._start is not None else LINEAR.initial(self.shape, seed=0)


class LinearModelType(ModelType):
    name = "linear"
    description = (
        "Ridge regression on standardised inputs, with the penalty chosen by exact leave-one-out "
        "error; trains in one step and predicts with one matrix product. Pick it when the "
        "relation is close to linear, when you have very few rows per input, or when you need a "
        "tiny, fully predictable model; it cannot represent curvature or interactions."
    )

    def parameter_count(self, shape: ModelShape) -> int:
        return shape.in_size * shape.out_size + shape.out_size

    def initial(self, shape: ModelShape, *, seed: int) -> LinearPredictor:
        return LinearPredictor(
            shape=shape,
            weight=torch.zeros(shape.in_size, shape.out_size),
            bias=torch.zeros(shape.out_size),
        )

    def load(self, data: bytes, *, device: str) -> LinearPredictor:
        return read_checkpoint(data, device=device, kind=KIND, load_payload=load_linear_payload)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> LinearRun:
        # Closed form: nothing to resume from, the fit on all rows is exact.
        return LinearRun(
            shape=shape, inputs=inputs, targets=targets, start=start, seed=seed, device=device
        )


LINEAR = LinearModelType()
# A candidate of `std` on any number of rows; its last resort as a default.
FAMILY = Family(kind=KIND, model_type=LINEAR, load_payload=load_linear_payload, default_rank=3)
