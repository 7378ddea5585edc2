"""`std` on many outputs: learn a few principal-shape coefficients, reconstruct every output.

Above `COMPRESS_MIN_OUT_SIZE` outputs (a mesh's vertex offsets, say) `std` centres the targets,
scales them all by one common spread, keeps their leading principal shapes (how many: by
explained variance and by what still generalises to held-out rows), rotates the coefficients so
each column carries the same variance, and trains its usual candidates on them; predicting is
one small matrix product. The checkpoint holds the shapes (float32, with the output scale folded
in), the output means, and the coefficient model's own checkpoint. Imports numpy, torch,
`sgt.ml.base`, `sgt.ml.checkpoints` and the numerics; the coefficient run arrives as a factory.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sgt.ml.base import ModelShape, Predictor, TrainingProgress, TrainingRun
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint
from sgt.ml.numerics.compression import (
    balancing_rotation,
    count_for_validation,
    count_for_variance,
    fit_pca,
    held_out_unexplained,
    project,
)
from sgt.ml.numerics.fitting import MIN_ROWS_FOR_VALIDATION

KIND = "pca"
# From this many outputs on `std` trains on principal-shape coefficients. The direct candidates
# allocate about 16,800 parameters per output (the forest's leaves, the GP's stored targets, the
# MLP's last layer): 34 million at 2,047 outputs, beyond the default bound of 50 million from
# about 3,000. Compressed, 150,000 outputs allocate 22 million.
COMPRESS_MIN_OUT_SIZE = 2048
# At most this many shapes: a few hundred poses have at most that many independent directions,
# and the bound keeps the checkpoint to MAX_COMPONENTS x out_size floats.
MAX_COMPONENTS = 128
# Shapes are kept until they explain this fraction of the standardised variance ...
VARIANCE_KEPT = 0.9999
# ... and no further than the held-out rows are still explained better by more than this
# fraction of their variance.
VALIDATION_TOLERANCE = 1e-3
# Share of the rows held out to choose the count.
HELD_OUT_SHARE = 0.2

CoefficientRunFactory = Callable[[ModelShape, np.ndarray, np.ndarray], TrainingRun]


def compressed_parameter_count(shape: ModelShape, coefficient_parameters: int) -> int:
    """Parameters a compressed model allocates: the shapes, the means, the coefficient model."""
    return MAX_COMPONENTS * shape.out_size + shape.out_size + coefficient_parameters


def coefficient_shape(shape: ModelShape) -> ModelShape:
    """The widest coefficient model a compressed model of `shape` may train."""
    return ModelShape(shape.in_size, min(MAX_COMPONENTS, shape.out_size))


class CompressedPredictor(Predictor):
    """outputs = coefficients(x) @ shapes + mean, where `coefficients` is any predictor."""

    kind = KIND

    def __init__(
        self, *, shape: ModelShape, shapes: np.ndarray, mean: np.ndarray, inner: Predictor
    ) -> None:
        if shapes.shape != (inner.shape.out_size, shape.out_size) or mean.shape != (
            shape.out_size,
        ):
            raise ValueError("shapes must be (components, out_size) and mean (out_size,)")
        self.shape = shape
        self.shapes = np.ascontiguousarray(shapes, dtype=np.float32)
        self.mean = np.ascontiguousarray(mean, dtype=np.float32)
        self.inner = inner
        self._shapes = torch.from_numpy(self.shapes)
        self._mean = torch.from_numpy(self.mean)

    @classmethod
    def zeros(cls, shape: ModelShape, *, inner: Predictor) -> CompressedPredictor:
        """Answers 0 for every output, whatever `inner` (one coefficient wide) says."""
        return cls(
            shape=shape,
            shapes=np.zeros((inner.shape.out_size, shape.out_size), dtype=np.float32),
            mean=np.zeros(shape.out_size, dtype=np.float32),
            inner=inner,
        )

    @property
    def components(self) -> int:
        return int(self.shapes.shape[0])

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self.reconstruct(self.coefficients(inputs), 0, self.shape.out_size)

    def coefficients(self, inputs: np.ndarray) -> np.ndarray:
        """The coefficient model's answer for `inputs`: (n, components) float32."""
        return np.asarray(self.inner.predict(inputs), dtype=np.float32)

    def reconstruct(self, coefficients: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Outputs `start` to `stop` of the rows whose coefficients are given (the API splits a
        wide reconstruction by columns across its threads: sgt.ml.parallel)."""
        # In torch, not numpy: the API runs torch on one thread per prediction (sgt.ml.parallel),
        # while numpy's BLAS threads spin against each other on a busy machine (one pose of
        # 150,000 outputs: 3 ms against 20-60 ms, measured under load).
        outputs = torch.addmm(
            self._mean[start:stop], torch.from_numpy(coefficients), self._shapes[:, start:stop]
        )
        return outputs.numpy()

    def predict_std(self, inputs: np.ndarray) -> np.ndarray:
        return self._spread(self.inner.predict_std(inputs))

    def predict_with_std(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        coefficients, deviation = self.inner.predict_with_std(inputs)
        mean = self.reconstruct(np.asarray(coefficients, np.float32), 0, self.shape.out_size)
        return mean, self._spread(deviation)

    def out_of_range(self, inputs: np.ndarray) -> np.ndarray:
        # The coefficient model saw the same inputs, and keeps their calibrated bounds.
        return self.inner.out_of_range(inputs)

    def suggest_rows(self, candidates: np.ndarray, k: int) -> list[int]:
        # The rows that most reduce the coefficients' uncertainty reduce the outputs' most:
        # the coefficients carry equal variance (balanced), and the shapes are fixed.
        return self.inner.suggest_rows(candidates, k)

    def _spread(self, coefficient_std: np.ndarray) -> np.ndarray:
        """Each output's standard deviation from the coefficients' calibrated ones, taken as
        independent: an error of coefficient c moves every output along shape c, so output j's
        variance is the sum over c of (std_c x shapes[c, j])^2. What the kept shapes cannot
        express is not counted (docs/uncertainty.md). The squared shapes are made on the first
        call (as large as the shapes)."""
        squared = getattr(self, "_squared_shapes", None)
        if squared is None:
            squared = self._shapes * self._shapes
            self._squared_shapes = squared
        variance = torch.from_numpy(np.square(np.asarray(coefficient_std, np.float32)))
        return torch.sqrt(torch.mm(variance, squared)).numpy()

    def to_bytes(self) -> bytes:
        payload = {
            "shapes": torch.from_numpy(self.shapes),
            "mean": torch.from_numpy(self.mean),
            # As a byte tensor: torch.save pickles plain bytes about 1.5 times larger.
            "inner": torch.frombuffer(bytearray(self.inner.to_bytes()), dtype=torch.uint8),
        }
        return pack_checkpoint(kind=KIND, shape=self.shape, payload=payload)


def load_compressed_payload(
    shape: ModelShape, payload: dict[str, Any], *, load_inner: Callable[[bytes], Predictor]
) -> CompressedPredictor:
    """Rebuild a `CompressedPredictor`; `load_inner` reads the coefficient model's checkpoint."""
    shapes, mean, inner = payload.get("shapes"), payload.get("mean"), payload.get("inner")
    if not isinstance(shapes, torch.Tensor) or not isinstance(mean, torch.Tensor):
        raise CheckpointUnreadable("compressed checkpoint lacks its shapes or mean")
    if not isinstance(inner, torch.Tensor) or inner.dtype != torch.uint8:
        raise CheckpointUnreadable("compressed checkpoint lacks its coefficient model")
    try:
        return CompressedPredictor(
            shape=shape,
            shapes=shapes.detach().cpu().numpy(),
            mean=mean.detach().cpu().numpy(),
            inner=load_inner(inner.cpu().numpy().tobytes()),
        )
    except ValueError as error:
        raise CheckpointUnreadable(f"compressed checkpoint is inconsistent: {error}") from error


def common_scale(targets: np.ndarray) -> tuple[np.ndarray, float]:
    """Each output's mean, and one scale for all: the root-mean-square spread of the outputs.

    Many outputs of one model are one kind of quantity (a mesh's offsets), so they keep their
    relative sizes: scaled one by one, a vertex far from every joint, which barely moves, would
    weigh as much as the bulge, and its round-off would become shapes."""
    data = np.asarray(targets, dtype=np.float64)
    mean = data.mean(axis=0)
    spread = float(np.sqrt(np.mean((data - mean) ** 2)))
    return mean.astype(np.float32), spread if spread > 0.0 else 1.0


class CompressedRun(TrainingRun):
    """First step: scale, choose and fit the shapes; then the coefficient run's steps."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        untrained: Predictor,
        make_coefficient_run: CoefficientRunFactory,
        seed: int,
    ) -> None:
        self.shape = shape
        self._inputs, self._targets = inputs, targets
        self._untrained = untrained
        self._make_coefficient_run = make_coefficient_run
        self._seed = seed
        self._run: TrainingRun | None = None
        self._shapes = np.zeros((0, shape.out_size), dtype=np.float32)
        self._mean = np.zeros(shape.out_size, dtype=np.float32)
        # Per column, the spread of its coefficients; and per row, the scaled variance
        # the kept shapes leave out: together they turn coefficient errors into output errors.
        self._coefficient_scale = np.ones(0)
        self._truncation = np.zeros(0)
        self._steps = 0

    @property
    def components(self) -> int:
        """How many shapes the run keeps (0 before its first step)."""
        return int(self._shapes.shape[0])

    def step(self) -> TrainingProgress:
        self._steps += 1
        if self._run is None:
            coefficients = self._fit_shapes()
            width = ModelShape(self.shape.in_size, coefficients.shape[1])
            self._run = self._make_coefficient_run(width, self._inputs, coefficients)
            return TrainingProgress(self._steps, math.nan, None, False, False)
        progress = self._run.step()
        return TrainingProgress(
            steps=self._steps,
            train_loss=progress.train_loss,
            val_loss=self._output_val_loss(progress.val_loss),
            has_improved=progress.has_improved,
            is_converged=progress.is_converged,
        )

    def _fit_shapes(self) -> np.ndarray:
        """Fit the shapes on scaled targets; return the rows' coefficients (n, k)."""
        mean, scale = common_scale(self._targets)
        standardised = (self._targets - mean) / scale
        count = self._count_by_validation(standardised)
        fitted = fit_pca(standardised, max_components=count)
        count = min(fitted.count, count_for_variance(fitted, kept=VARIANCE_KEPT))
        components = fitted.components[:count]
        coefficients = project(standardised, components).astype(np.float64)
        self._truncation = np.sum(standardised.astype(np.float64) ** 2, axis=1) - np.sum(
            coefficients**2, axis=1
        )
        # The coefficient candidates standardise each column and weigh the columns alike; rotated,
        # every column holds the same share of the variance, so they weigh output errors instead
        # (the GP's likelihood no longer treats a hair-thin shape like the main bulge). The
        # shapes take the inverse rotation: coefficients @ shapes is unchanged.
        rotation = balancing_rotation(coefficients.T @ coefficients / len(coefficients))
        coefficients = coefficients @ rotation
        components = (rotation.T @ components.astype(np.float64)).astype(np.float32)
        self._coefficient_scale = coefficients.std(axis=0)
        self._shapes = components * np.float32(scale)
        self._mean = mean
        return np.ascontiguousarray(coefficients, dtype=np.float32)

    def _count_by_validation(self, standardised: np.ndarray) -> int:
        """Most shapes worth keeping: fitted on most rows, judged on the rest."""
        rows = len(standardised)
        if rows < MIN_ROWS_FOR_VALIDATION:
            return min(MAX_COMPONENTS, rows)
        order = np.random.default_rng(self._seed).permutation(rows)
        held = max(2, int(round(HELD_OUT_SHARE * rows)))
        held_out, fitted_rows = np.sort(order[:held]), np.sort(order[held:])
        fitted_mean = standardised[fitted_rows].mean(axis=0)
        shapes = fit_pca(standardised[fitted_rows] - fitted_mean, max_components=MAX_COMPONENTS)
        unexplained = held_out_unexplained(standardised[held_out] - fitted_mean, shapes.components)
        # The full fit has more rows, so it may resolve a shape more than the partial one did.
        count = count_for_validation(unexplained, tolerance=VALIDATION_TOLERANCE)
        return min(MAX_COMPONENTS, count + 1)

    def _output_val_loss(self, coefficient_val_loss: float | None) -> float | None:
        """The validation MSE per scaled output, from the coefficient run's (per standardised
        coefficient): each column's error weighed by its coefficients' variance (after the
        balancing rotation all alike), plus what the shapes leave out."""
        if coefficient_val_loss is None:
            return None
        coefficient_part = coefficient_val_loss * float(np.sum(self._coefficient_scale**2))
        left_out = float(np.mean(np.maximum(self._truncation, 0.0)))
        return (coefficient_part + left_out) / self.shape.out_size

    def validation_residuals(self) -> None:
        # Nothing compares a compressed run with another family; the residuals would be
        # (rows, out_size) wide.
        return None

    def best(self) -> Predictor:
        if self._run is None:
            return self._untrained
        return CompressedPredictor(
            shape=self.shape, shapes=self._shapes, mean=self._mean, inner=self._run.best()
        )
