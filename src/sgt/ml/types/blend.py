"""A weighted average of trained predictors: what `std` serves when the data are too few for
validation to single out one model family.

The checkpoint stores each member's own checkpoint beside its weight, so any member kind round-
trips; the caller supplies the reader of member checkpoints. Imports torch, numpy, `sgt.ml.base`
and `sgt.ml.checkpoints` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint

KIND = "blend"


class BlendPredictor(Predictor):
    """sum_k weight_k * member_k(x); the weights are positive and sum to 1."""

    kind = KIND

    def __init__(
        self, *, shape: ModelShape, members: Sequence[Predictor], weights: Sequence[float]
    ) -> None:
        if len(members) != len(weights) or not members:
            raise ValueError("a blend needs one weight per member and at least one member")
        total = float(sum(weights))
        self.shape = shape
        self.members = list(members)
        self.weights = [float(weight) / total for weight in weights]

    def member(self, kind: str) -> Predictor | None:
        """The member of family `kind`, so that a later run can resume from its weights."""
        return next((m for m in self.members if m.kind == kind), None)

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        outputs = self.weights[0] * self.members[0].predict(inputs)
        for weight, member in zip(self.weights[1:], self.members[1:], strict=True):
            outputs += weight * member.predict(inputs)
        return np.asarray(outputs, dtype=np.float32)

    def suggest_rows(self, candidates: np.ndarray, k: int) -> list[int]:
        """Through the first member with a selection rule of its own (a GP's posterior), which
        sees the training rows; the default rule otherwise."""
        for member in self.members:
            if type(member).suggest_rows is not Predictor.suggest_rows:
                return member.suggest_rows(candidates, k)
        return super().suggest_rows(candidates, k)

    def to_bytes(self) -> bytes:
        payload = {
            "weights": torch.tensor(self.weights, dtype=torch.float64),
            "members": [member.to_bytes() for member in self.members],
        }
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_blend_payload(
    shape: ModelShape,
    payload: dict[str, object],
    *,
    device: str,
    load_member: Callable[[bytes], Predictor],
) -> BlendPredictor:
    """Rebuild a `BlendPredictor`; `load_member` reads one member checkpoint onto the device."""
    weights, members = payload.get("weights"), payload.get("members")
    if not isinstance(weights, torch.Tensor) or not isinstance(members, list):
        raise CheckpointUnreadable("blend checkpoint lacks its weights or members")
    if len(members) != weights.numel() or not members:
        raise CheckpointUnreadable("blend checkpoint has one weight per member")
    if not all(isinstance(member, bytes) for member in members):
        raise CheckpointUnreadable("blend members must be checkpoints")
    loaded = [load_member(member) for member in members]
    if any(member.shape != shape for member in loaded):
        raise CheckpointUnreadable("blend member has another shape than the blend")
    return BlendPredictor(shape=shape, members=loaded, weights=weights.tolist())
