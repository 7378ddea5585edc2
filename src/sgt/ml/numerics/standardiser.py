"""Per-column affine scaling learnt from training data, stored with every checkpoint.

Imports torch and numpy only; knows nothing about model types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Columns whose spread is below this are constant: scaling them by 1 keeps them finite.
_MIN_SCALE = 1e-8


@dataclass(frozen=True)
class Standardiser:
    """Maps raw columns to zero mean and unit variance: `(x - mean) / scale`."""

    mean: torch.Tensor
    scale: torch.Tensor

    @classmethod
    def fit(cls, values: np.ndarray, *, device: str) -> Standardiser:
        """Statistics of `values` (n, d) computed in float64; identity when n == 0."""
        data = np.asarray(values, dtype=np.float64)
        if data.shape[0] == 0:
            return cls.identity(data.shape[1], device=device)
        mean = data.mean(axis=0)
        scale = data.std(axis=0)
        scale = np.where(scale < _MIN_SCALE * np.maximum(1.0, np.abs(mean)), 1.0, scale)
        return cls(_to_tensor(mean, device), _to_tensor(scale, device))

    @classmethod
    def identity(cls, width: int, *, device: str) -> Standardiser:
        """A standardiser that changes nothing."""
        return cls(
            torch.zeros(width, dtype=torch.float32, device=device),
            torch.ones(width, dtype=torch.float32, device=device),
        )

    def apply(self, values: torch.Tensor) -> torch.Tensor:
        """Raw to standardised."""
        return (values - self.mean) / self.scale

    def invert(self, values: torch.Tensor) -> torch.Tensor:
        """Standardised to raw."""
        return torch.addcmul(self.mean, values, self.scale)

    def to_state(self) -> dict[str, torch.Tensor]:
        """Tensors for a checkpoint payload."""
        return {"mean": self.mean.detach().cpu(), "scale": self.scale.detach().cpu()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], *, device: str) -> Standardiser:
        """Inverse of `to_state`, placed on `device`."""
        return cls(
            state["mean"].to(device=device, dtype=torch.float32),
            state["scale"].to(device=device, dtype=torch.float32),
        )


def _to_tensor(values: np.ndarray, device: str) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).to(device)
