"""The GP posterior that `gp` and `std` checkpoints hold: hyper-parameters, conditioning rows,
weights, and the float64 serving path. Imports torch, numpy and this package's pieces.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.checkpoints import pack_checkpoint
from sgt.ml.numerics.kernels import (
    JITTER,
    covariance,
    factorise,
    leading_variance_basis,
    leave_one_out_residuals,
)
from sgt.ml.numerics.selection import integrated_variance_batch, reference_rows
from sgt.ml.numerics.standardiser import Standardiser

KIND = "gp"
F64 = torch.float64
_LOG_LENGTH_RANGE = (math.log(1e-2), math.log(1e5))
_LOG_SIGNAL_RANGE = (math.log(1e-4), math.log(1e6))
_LOG_NOISE_RANGE = (math.log(1e-9), math.log(10.0))
# Rows per prediction chunk times conditioning rows stays under this many kernel entries.
_KERNEL_CHUNK_ENTRIES = 4_000_000
# From this many conditioning rows the served spread is taken from the kernel's leading
# eigenvectors (kernels.leading_variance_basis) when they carry all but this share of the
# predictive variance at every conditioning row, and they are at most half of the rows: the
# exact triangular solve costs rows² a query row and made return_std 2.5-2.8x a plain run of a
# 1,000-row GP (docs/uncertainty.md). The left-out share only ever widens the spread.
_LOW_RANK_MIN_ROWS = 128
_LOW_RANK_TOLERANCE = 1e-3
_LOW_RANK_MAX_SHARE = 0.5


@dataclass(frozen=True)
class Hyper:
    """Kernel family, log length scales (one per input), log signal and log noise variances."""

    family: str
    log_lengths: torch.Tensor
    log_signal: torch.Tensor
    log_noise: torch.Tensor

    @classmethod
    def from_vector(cls, family: str, vector: torch.Tensor) -> Hyper:
        """Unpack, clamping each value into its plausible range (on standardised data): beyond
        them the likelihood can prefer degenerate fits (huge length scale and signal together)
        whose kernel matrices cannot be factorised."""
        return cls(
            family,
            vector[:-2].clamp(*_LOG_LENGTH_RANGE),
            vector[-2].clamp(*_LOG_SIGNAL_RANGE),
            vector[-1].clamp(*_LOG_NOISE_RANGE),
        )

    def vector(self) -> torch.Tensor:
        return torch.cat([self.log_lengths, self.log_signal.view(1), self.log_noise.view(1)])


class GpPredictor(Predictor):
    """Posterior mean of a GP: k(x, rows) @ weights, in standardised units then mapped back."""

    kind = KIND

    def __init__(
        self,
        *,
        shape: ModelShape,
        hyper: Hyper,
        rows: torch.Tensor,
        weights: torch.Tensor,
        inputs_scaler: Standardiser,
        targets_scaler: Standardiser,
    ) -> None:
        self.shape = shape
        self.hyper = hyper
        self.rows = rows  # standardised conditioning inputs, float64
        self.weights = weights  # (rows, out) float64
        self.inputs_scaler = inputs_scaler
        self.targets_scaler = targets_scaler
        self.device = str(rows.device)
        lengths = torch.exp(hyper.log_lengths)
        scale = inputs_scaler.scale.to(F64) * lengths
        # Served in float64: float32 kernels are about twice as fast on large batches (20,000
        # query rows against 2,000 conditioning rows), but their round-off is multiplied by the
        # weights, which grow large when the noise is tiny, and an ONNX export could not
        # reproduce it. Raw inputs map straight to length-scaled ones: x * gain + offset.
        self._gain = 1.0 / scale
        self._offset = -inputs_scaler.mean.to(F64) / scale
        self._rows_scaled = rows / lengths
        self._signal = torch.exp(hyper.log_signal)
        self._out_scale = targets_scaler.scale.to(F64)
        self._out_mean = targets_scaler.mean.to(F64)
        # The spread's basis, found once on the first spread asked for (API threads share it).
        self._basis_lock = threading.Lock()
        self._basis_found = False
        self._basis: torch.Tensor | None = None

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return self._evaluate(inputs, with_mean=True, with_spread=False)[0]

    def raw_spread(self, inputs: np.ndarray) -> np.ndarray:
        """Predictive standard deviation of a new target (posterior variance plus the learnt
        noise), in target units; the kernel is shared by all outputs, so only the scale differs."""
        return self._spread_in_target_units(
            self._evaluate(inputs, with_mean=False, with_spread=True)[1]
        )

    def predict_with_std(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # One kernel evaluation serves both: it is most of the cost of either.
        mean, variance = self._evaluate(inputs, with_mean=True, with_spread=True)
        spread = self._spread_in_target_units(variance)
        if self.calibration is not None:
            spread = self.calibration.served_std(inputs, spread)
        return mean, np.asarray(spread, dtype=np.float32)

    def _evaluate(
        self, inputs: np.ndarray, *, with_mean: bool, with_spread: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(means (n, out) float32, posterior variances (n,) in standardised units), each filled
        only when asked for, from one kernel evaluation per chunk of rows."""
        raw = np.ascontiguousarray(inputs, dtype=np.float32)
        outputs = np.empty((raw.shape[0], self.shape.out_size), dtype=np.float32)
        variance = np.empty(raw.shape[0], dtype=np.float64)
        chunk = max(1, _KERNEL_CHUNK_ENTRIES // max(1, self._rows_scaled.shape[0]))
        explain = self._explainer() if with_spread else None
        with torch.inference_mode():
            for begin in range(0, raw.shape[0], chunk):
                batch = torch.from_numpy(raw[begin : begin + chunk]).to(self.device, F64)
                scaled = torch.addcmul(self._offset, batch, self._gain)
                kernel = covariance(scaled, self._rows_scaled, self._signal, self.hyper.family)
                if with_mean:
                    values = torch.addcmul(
                        self._out_mean, torch.matmul(kernel, self.weights), self._out_scale
                    )
                    outputs[begin : begin + chunk] = values.to(torch.float32).cpu().numpy()
                if explain is not None:
                    explained = explain(kernel)
                    variance[begin : begin + chunk] = (
                        (self._signal - explained).double().cpu().numpy()
                    )
        return outputs, variance

    def held_out_spread(self, inputs: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
        """The exact leave-one-out predictive deviation, 1 / sqrt(diag(K⁻¹)), when `rows` are
        this posterior's own conditioning rows in order (as a GP run's residuals list them)."""
        if len(rows) != self.rows.shape[0]:
            return super().held_out_spread(inputs, rows)
        with torch.inference_mode():
            inverse = torch.cholesky_inverse(self._factor())
        diagonal = torch.diagonal(inverse).double().cpu().numpy()
        return self._spread_in_target_units(1.0 / np.maximum(diagonal, 1e-300) - self._noise())

    def suggest_rows(self, candidates: np.ndarray, k: int) -> list[int]:
        """Greedy integrated-variance reduction over the candidates, in this GP's standardised,
        length-scaled input space, conditioning on the training rows and on each row chosen."""
        raw = torch.from_numpy(np.ascontiguousarray(candidates, dtype=np.float64))
        family, signal, rows = self.hyper.family, self._signal, self._rows_scaled
        with torch.inference_mode():
            scale = self.inputs_scaler.scale.to(F64) * torch.exp(self.hyper.log_lengths)
            scaled = (raw.to(self.device) - self.inputs_scaler.mean.to(F64)) / scale
            # whitened[:, i] = L⁻¹ k(rows, candidate i): the posterior covariance of candidates
            # i and j is their prior covariance minus whitened[:, i] · whitened[:, j].
            whitened = torch.linalg.solve_triangular(
                self._factor(), covariance(rows, scaled, signal, family), upper=False
            )
            own_variances = signal - (whitened * whitened).sum(dim=0)
            reference = torch.from_numpy(reference_rows(len(raw))).to(self.device)
            cross = covariance(scaled[reference], scaled, signal, family)
            cross -= torch.matmul(whitened[:, reference].T, whitened)

        def column(index: int) -> np.ndarray:
            with torch.inference_mode():
                prior = covariance(scaled, scaled[index : index + 1], signal, family)[:, 0]
                values = prior - torch.matmul(whitened.T, whitened[:, index])
                return np.asarray(values.cpu().numpy())

        return integrated_variance_batch(
            cross=cross.cpu().numpy(),
            variances=own_variances.cpu().numpy(),
            column=column,
            noise=self._noise(),
            k=k,
        )

    def _spread_in_target_units(self, variance: np.ndarray) -> np.ndarray:
        total = np.maximum(variance, 0.0) + self._noise()
        scale = self.targets_scaler.scale.double().cpu().numpy()
        return np.asarray(np.sqrt(total)[:, None] * scale[None, :], dtype=np.float64)

    def _noise(self) -> float:
        """The variance `factorise` adds to the kernel's diagonal: the learnt noise (with its
        jitter, `variances`) plus the factor's own jitter."""
        return float(variances(self.hyper)[1]) + JITTER

    def _explainer(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """kᵀ(K + noise·I)⁻¹k for each row k of a (queries by conditioning rows) kernel: through
        the leading eigenvectors where they suffice, else exactly through the factor."""
        with self._basis_lock:
            if not self._basis_found:
                if self._rows_scaled.shape[0] >= _LOW_RANK_MIN_ROWS:
                    with torch.inference_mode():
                        self._basis = leading_variance_basis(
                            self._rows_scaled,
                            self._signal,
                            self._noise(),
                            self.hyper.family,
                            tolerance=_LOW_RANK_TOLERANCE,
                            max_share=_LOW_RANK_MAX_SHARE,
                        )
                self._basis_found = True
        basis = self._basis
        if basis is None:
            factor = self._factor()
            return lambda kernel: _explained_variance(factor, kernel)
        return lambda kernel: torch.matmul(kernel, basis).square().sum(dim=1)

    def _factor(self) -> torch.Tensor:
        """Lower Cholesky factor L of K + noise·I of the conditioning rows, float64, computed
        once per predictor."""
        cached = getattr(self, "_cached_factor", None)
        if cached is None:
            with torch.inference_mode():
                cached = factorise(self._rows_scaled, *variances(self.hyper), self.hyper.family)
            self._cached_factor = cached
        return cached

    def to_bytes(self) -> bytes:
        payload = {
            "family": self.hyper.family,
            "hyper": self.hyper.vector().detach().cpu(),
            "rows": self.rows.detach().cpu(),
            "weights": self.weights.detach().cpu(),
            "inputs_scaler": self.inputs_scaler.to_state(),
            "targets_scaler": self.targets_scaler.to_state(),
        }
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_gp_payload(shape: ModelShape, payload: dict[str, object], *, device: str) -> GpPredictor:
    """Rebuild a `GpPredictor` from a checkpoint payload."""

    def tensor(key: str) -> torch.Tensor:
        value = payload[key]
        assert isinstance(value, torch.Tensor)
        return value.to(device=device, dtype=F64)

    return GpPredictor(
        shape=shape,
        hyper=Hyper.from_vector(str(payload["family"]), tensor("hyper")),
        rows=tensor("rows"),
        weights=tensor("weights"),
        inputs_scaler=Standardiser.from_state(payload["inputs_scaler"], device=device),  # type: ignore[arg-type]
        targets_scaler=Standardiser.from_state(payload["targets_scaler"], device=device),  # type: ignore[arg-type]
    )


def condition(
    shape: ModelShape,
    hyper: Hyper,
    rows: torch.Tensor,
    targets: torch.Tensor,
    inputs_scaler: Standardiser,
    targets_scaler: Standardiser,
) -> tuple[GpPredictor, np.ndarray]:
    """The posterior given standardised rows and targets, and its leave-one-out residuals."""
    with torch.no_grad():
        factor = factorise(rows / torch.exp(hyper.log_lengths), *variances(hyper), hyper.family)
        weights = torch.cholesky_solve(targets, factor)
        residuals = leave_one_out_residuals(factor, targets)
    frozen = Hyper(
        hyper.family,
        *(
            tensor.detach().clone()
            for tensor in (hyper.log_lengths, hyper.log_signal, hyper.log_noise)
        ),
    )
    predictor = GpPredictor(
        shape=shape,
        hyper=frozen,
        rows=rows,
        weights=weights,
        inputs_scaler=inputs_scaler,
        targets_scaler=targets_scaler,
    )
    return predictor, residuals.cpu().numpy()


def _explained_variance(factor: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """kᵀ(K + noise·I)⁻¹k for each row k of `kernel` (queries by conditioning rows), as ‖L⁻¹k‖².

    Not through the explicit inverse: with a tiny learnt noise its entries reach 1/noise, and
    the product's round-off (about 1e-4 of the signal on noise-free friedman2) buries the
    posterior variance (1e-6 there), which made the served std far too small."""
    whitened = torch.linalg.solve_triangular(factor, kernel.T, upper=False)
    explained: torch.Tensor = (whitened * whitened).sum(dim=0)
    return explained


def variances(hyper: Hyper) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.exp(hyper.log_signal), torch.exp(hyper.log_noise) + JITTER
