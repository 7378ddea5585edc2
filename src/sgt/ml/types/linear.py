"""The `linear` model type: ridge regression on standardised inputs, penalty chosen by exact
leave-one-out error. Also the linear candidate of `std`. Imports torch, numpy and this package.
"""

from __future__ import annotations

import numpy as np
import torch

from sgt.ml.base import (
    ModelShape,
    ModelType,
    Predictor,
    TrainingProgress,
    TrainingRun,
    register_model_type,
)
from sgt.ml.types.checkpoints import CheckpointUnreadable, pack_checkpoint, unpack_checkpoint
from sgt.ml.types.standardiser import Standardiser

KIND = "linear"
# Ridge penalties tried, relative to the row count (so the choice does not drift with n).
_PENALTIES = np.logspace(-6, 2, 33)


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
        return pack_checkpoint(kind=KIND, shape=self.shape, payload=payload)


def load_linear_payload(
    shape: ModelShape, payload: dict[str, object], *, device: str
) -> LinearPredictor:
    """Rebuild a `LinearPredictor` from a checkpoint payload."""
    weight, bias = payload["weight"], payload["bias"]
    assert isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor)
    return LinearPredictor(
        shape=shape, weight=weight.to(device, torch.float32), bias=bias.to(device, torch.float32)
    )


def fit_ridge(inputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw-unit (weight, bias) of the ridge fit whose penalty has the lowest leave-one-out error,
    and its leave-one-out residuals (rows, outputs) on standardised targets."""
    x_mean, x_scale = _moments(inputs)
    y_mean, y_scale = _moments(targets)
    x = (inputs.astype(np.float64) - x_mean) / x_scale
    y = (targets.astype(np.float64) - y_mean) / y_scale
    rows = len(x)
    eigenvalues, eigenvectors = np.linalg.eigh(x.T @ x)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    projected = x @ eigenvectors  # (n, d)
    along = eigenvectors.T @ (x.T @ y)  # (d, out)
    best_error, best_coefficients = np.inf, np.zeros((x.shape[1], y.shape[1]))
    best_residuals = np.zeros_like(y)
    for penalty in _PENALTIES * max(rows, 1):
        shrink = 1.0 / (eigenvalues + penalty)
        coefficients = eigenvectors @ (along * shrink[:, None])
        leverage = (projected**2) @ shrink
        residuals = (y - x @ coefficients) / np.clip(1.0 - leverage, 1e-6, None)[:, None]
        error = float((residuals**2).mean()) if rows else 0.0
        if error < best_error:
            best_error, best_coefficients, best_residuals = error, coefficients, residuals
    weight = best_coefficients / x_scale[:, None] * y_scale[None, :]
    bias = y_mean - x_mean @ weight
    return weight, bias, best_residuals


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaler = Standardiser.fit(values, device="cpu")
    return scaler.mean.double().numpy(), scaler.scale.double().numpy()


class LinearRun(TrainingRun):
    """Closed form: the single step fits, reports the leave-one-out error and converges."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        device: str,
    ) -> None:
        self.shape = shape
        self.device = device
        self._inputs, self._targets = inputs, targets
        # Answered until the first step, so that resuming never loses the current weights.
        self._start = start
        self._best: LinearPredictor | None = None
        self.best_val_loss: float | None = None
        self._residuals: np.ndarray | None = None

    def step(self) -> TrainingProgress:
        has_improved = self._best is None
        if self._best is None:
            weight, bias, self._residuals = fit_ridge(self._inputs, self._targets)
            self.best_val_loss = float(np.mean(self._residuals**2)) if len(self._residuals) else 0.0
            self._best = LinearPredictor(
                shape=self.shape,
                weight=torch.as_tensor(weight, dtype=torch.float32, device=self.device),
                bias=torch.as_tensor(bias, dtype=torch.float32, device=self.device),
            )
        return TrainingProgress(
            steps=1,
            train_loss=self.best_val_loss or 0.0,
            val_loss=self.best_val_loss,
            has_improved=has_improved,
            is_converged=True,
        )

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(row indices, leave-one-out residuals on standardised targets) once fitted."""
        if self._residuals is None:
            return None
        return np.arange(len(self._residuals)), self._residuals

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
        envelope = unpack_checkpoint(data, device=device)
        if envelope.kind != KIND:
            raise CheckpointUnreadable(f"checkpoint holds a '{envelope.kind}' model, not '{KIND}'")
        return load_linear_payload(envelope.shape, envelope.payload, device=device)

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
        return LinearRun(shape=shape, inputs=inputs, targets=targets, start=start, device=device)


LINEAR = LinearModelType()
register_model_type(LINEAR)
