"""The `gp` model type: exact Gaussian-process regression, ARD Matern-5/2 kernel, learnt noise.

Hyper-parameters maximise the marginal likelihood (L-BFGS from a few starting points); the
checkpoint stores the conditioning rows and their weights (`gp_posterior`). Also the GP
candidate of `std` (`FAMILY`). Imports torch, numpy, `sgt.ml.base`, `sgt.ml.checkpoints` and
`sgt.ml.numerics`; never `sgt.ml.types` or the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
from sgt.ml.checkpoints import read_checkpoint
from sgt.ml.families.gp_posterior import F64 as _F64
from sgt.ml.families.gp_posterior import (
    KIND,
    GpPredictor,
    Hyper,
    condition,
    load_gp_payload,
    variances,
)
from sgt.ml.numerics.kernels import KernelNotPositiveDefinite, factorise, negative_log_likelihood
from sgt.ml.numerics.standardiser import Standardiser

__all__ = ["FAMILY", "GP", "KIND", "GpConfig", "GpPredictor", "GpRun", "load_gp_payload"]


@dataclass(frozen=True)
class GpConfig:
    max_rows: int = 1500  # rows the GP conditions on (a random subset beyond)
    max_fit_rows: int = 500  # rows whose likelihood chooses the hyper-parameters
    max_iterations: int = 150  # L-BFGS iterations per starting point
    work_per_step: float = 5e7  # rough flops one step may spend
    families: tuple[str, ...] = ("matern52",)  # kernel families tried, the likeliest wins


def starting_points(
    in_size: int,
    families: tuple[str, ...],
    start: Predictor | None,
    inputs_scaler: Standardiser,
    targets_scaler: Standardiser,
) -> list[tuple[str, torch.Tensor]]:
    """(family, hyper-parameter vector) pairs to optimise from: the start's when resuming, else a
    small spread per family."""
    if isinstance(start, GpPredictor) and start.shape.in_size == in_size and start.rows.shape[0]:
        # Re-express the start's hyper-parameters in the new standardisation.
        ratio = start.inputs_scaler.scale.to(_F64).cpu() / inputs_scaler.scale.to(_F64).cpu()
        target_ratio = (
            (start.targets_scaler.scale.to(_F64).cpu() / targets_scaler.scale.to(_F64).cpu())
            .square()
            .mean()
        )
        vector = start.hyper.vector().detach().cpu().clone()
        vector[:-2] += torch.log(ratio)
        vector[-2:] += torch.log(target_ratio)
        return [(start.hyper.family, vector)]
    spread = math.log(math.sqrt(in_size))
    points = []
    for length_shift, log_signal, log_noise in (
        (0.0, 0.0, math.log(0.1)),
        (-0.7, 0.0, math.log(0.01)),
        (0.7, 0.0, math.log(0.3)),
    ):
        lengths = torch.full((in_size,), spread + length_shift, dtype=_F64)
        points.append(torch.cat([lengths, torch.tensor([log_signal, log_noise], dtype=_F64)]))
    return [(family, point) for family in families for point in points]


class GpRun(TrainingRun):
    """Marginal-likelihood L-BFGS from each starting point in turn; keeps the most likely."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        device: str,
        config: GpConfig,
    ) -> None:
        self.shape = shape
        self.config = config
        self.inputs_scaler = Standardiser.fit(inputs, device=device)
        self.targets_scaler = Standardiser.fit(targets, device=device)
        shuffled = np.random.default_rng(seed).permutation(len(inputs))
        order = np.sort(shuffled[: config.max_rows])
        self._row_indices = order
        self._residuals: np.ndarray | None = None
        self._rows, self._targets = self._standardised(inputs, targets, order)
        fit_count = min(len(order), config.max_fit_rows)
        self._fit_rows, self._fit_targets = self._standardised(
            inputs, targets, np.sort(shuffled[:fit_count])
        )
        self._starts = starting_points(
            shape.in_size, config.families, start, self.inputs_scaler, self.targets_scaler
        )
        self._start_index = -1
        self._iterations = 0
        cubic = fit_count**3 / 3.0 + 2.0 * fit_count**2 * shape.in_size
        self._iterations_per_step = int(min(20, max(1, config.work_per_step / max(1.0, cubic))))
        is_resumable = isinstance(start, GpPredictor) and start.shape == shape
        self._best: Predictor | None = start if is_resumable else None
        self._best_likelihood = math.inf
        self.best_val_loss: float | None = None
        self._last_loss = math.inf
        self.steps = 0
        self.is_converged = len(order) == 0
        self._next_start()

    def _standardised(
        self, inputs: np.ndarray, targets: np.ndarray, rows: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.inputs_scaler.mean.device
        x = self.inputs_scaler.apply(torch.as_tensor(inputs[rows], device=device))
        y = self.targets_scaler.apply(torch.as_tensor(targets[rows], device=device))
        return x.to(_F64), y.to(_F64)

    def _next_start(self) -> None:
        self._start_index += 1
        self._iterations = 0
        self._last_loss = math.inf
        if self._start_index >= len(self._starts):
            self.is_converged = True
            return
        self._family, vector = self._starts[self._start_index]
        self._vector = vector.to(self._rows.device).clone().requires_grad_(True)
        self._optimizer = torch.optim.LBFGS(
            [self._vector],
            lr=1.0,
            max_iter=self._iterations_per_step,
            max_eval=self._iterations_per_step + 2,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_change=1e-9,
            tolerance_grad=1e-6,
        )

    def _loss(self) -> torch.Tensor:
        hyper = Hyper.from_vector(self._family, self._vector)
        factor = factorise(
            self._fit_rows / torch.exp(hyper.log_lengths), *variances(hyper), hyper.family
        )
        return negative_log_likelihood(factor, self._fit_targets)

    def _closure(self) -> torch.Tensor:
        self._optimizer.zero_grad()
        try:
            loss = self._loss()
        except KernelNotPositiveDefinite:
            # A flat, huge loss makes the line search step back towards factorisable values.
            loss = self._vector.sum() * 0.0 + 1e10
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    def step(self) -> TrainingProgress:
        has_improved = False
        if not self.is_converged:
            self._optimizer.step(self._closure)  # type: ignore[no-untyped-call]
            self._iterations += self._iterations_per_step
            with torch.no_grad():
                try:
                    loss = float(self._loss())
                except KernelNotPositiveDefinite:
                    loss = math.inf
            is_flat = abs(self._last_loss - loss) < 1e-7 or not math.isfinite(loss)
            self._last_loss = loss
            if is_flat or self._iterations >= self.config.max_iterations:
                has_improved = self._finish_start(loss)
                self._next_start()
        self.steps += 1
        return TrainingProgress(
            steps=self.steps,
            train_loss=self._last_loss if math.isfinite(self._last_loss) else self._best_likelihood,
            val_loss=self.best_val_loss,
            has_improved=has_improved,
            is_converged=self.is_converged,
        )

    def _finish_start(self, loss: float) -> bool:
        if not math.isfinite(loss) or loss >= self._best_likelihood:
            return False
        self._best_likelihood = loss
        hyper = Hyper.from_vector(self._family, self._vector.detach())
        try:
            self._best, self._residuals = condition(
                self.shape,
                hyper,
                self._rows,
                self._targets,
                self.inputs_scaler,
                self.targets_scaler,
            )
        except KernelNotPositiveDefinite:
            return False
        self.best_val_loss = float(np.mean(self._residuals**2))
        return True

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(row indices, leave-one-out residuals on standardised targets) of the best fit."""
        if self._residuals is None:
            return None
        return self._row_indices, self._residuals

    def best(self) -> Predictor:
        if self._best is None:
            return GP.initial(self.shape, seed=0)
        return self._best


class GpModelType(ModelType):
    name = "gp"
    description = (
        "Exact Gaussian process (Matern-5/2 kernel with one length scale per input, plus learnt "
        "noise), hyper-parameters by maximum marginal likelihood. The most accurate choice for "
        "smooth "
        "functions with up to a few hundred or a thousand rows; irrelevant inputs get long length "
        "scales and are ignored. Training cost grows with the cube of the row count (at most "
        "1500 rows are used, a random subset beyond) and the checkpoint stores those rows; "
        "prefer `std` or `mlp` for more data."
    )

    def __init__(self, config: GpConfig) -> None:
        self.config = config

    def parameter_count(self, shape: ModelShape) -> int:
        # The stored conditioning rows and weights are this model's parameters.
        return self.config.max_rows * (shape.in_size + shape.out_size) + shape.in_size + 2

    def initial(self, shape: ModelShape, *, seed: int) -> GpPredictor:
        # No rows to condition on: the prior mean, 0.
        return GpPredictor(
            shape=shape,
            hyper=Hyper(
                "matern52",
                torch.zeros(shape.in_size, dtype=_F64),
                torch.zeros((), dtype=_F64),
                torch.zeros((), dtype=_F64),
            ),
            rows=torch.zeros(0, shape.in_size, dtype=_F64),
            weights=torch.zeros(0, shape.out_size, dtype=_F64),
            inputs_scaler=Standardiser.identity(shape.in_size, device="cpu"),
            targets_scaler=Standardiser.identity(shape.out_size, device="cpu"),
        )

    def load(self, data: bytes, *, device: str) -> GpPredictor:
        return read_checkpoint(data, device=device, kind=KIND, load_payload=load_gp_payload)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> GpRun:
        return GpRun(
            shape=shape,
            inputs=inputs,
            targets=targets,
            start=start,
            seed=seed,
            device=device,
            config=self.config,
        )


GP = GpModelType(GpConfig())
# Up to twice its row budget the GP, conditioned on a random subset, may still win; where it runs
# it is the family `std` trusts first.
FAMILY = Family(
    kind=KIND,
    model_type=GP,
    load_payload=load_gp_payload,
    max_rows=2 * GP.config.max_rows,
    default_rank=0,
)
