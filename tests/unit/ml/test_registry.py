"""A family is one module and one registry entry: `std` trains, counts and reads back whatever
families it is given, and nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sgt.ml.base import Family, ModelShape, ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint
from sgt.ml.registry import FAMILIES, MODEL_TYPES, STD

SHAPE = ModelShape(2, 1)


class MeanPredictor(Predictor):
    kind = "mean"

    def __init__(self, shape: ModelShape, mean: torch.Tensor) -> None:
        self.shape = shape
        self.mean = mean

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        row = self.mean.numpy().astype(np.float32)
        return np.repeat(row[None, :], len(inputs), axis=0)

    def to_bytes(self) -> bytes:
        return pack_checkpoint(kind=self.kind, shape=self.shape, payload={"mean": self.mean})


def load_mean_payload(shape: ModelShape, payload: dict[str, Any], *, device: str) -> Predictor:
    return MeanPredictor(shape, payload["mean"].to(device))


class MeanRun(TrainingRun):
    def __init__(self, shape: ModelShape, targets: np.ndarray) -> None:
        self._best = MeanPredictor(shape, torch.as_tensor(targets.mean(axis=0)))

    def step(self) -> TrainingProgress:
        return TrainingProgress(1, 1.0, 1.0, has_improved=True, is_converged=True)

    def best(self) -> Predictor:
        return self._best


class MeanModelType(ModelType):
    name = "mean"
    description = "the mean of the training targets"

    def parameter_count(self, shape: ModelShape) -> int:
        return shape.out_size

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        return MeanPredictor(shape, torch.zeros(shape.out_size))

    def load(self, data: bytes, *, device: str) -> Predictor:
        raise NotImplementedError

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
        return MeanRun(shape, targets)


MEAN = Family(kind="mean", model_type=MeanModelType(), load_payload=load_mean_payload)


def test_std_trains_the_families_of_the_registry_in_its_order() -> None:
    assert [family.kind for family in FAMILIES] == ["gbt", "gp", "linear", "mlp", "forest"]
    # The trees join beyond the blend's 500 rows, the forest serves only within it.
    assert STD.candidate_kinds(30, None) == ["gp", "linear", "mlp", "forest"]
    assert STD.candidate_kinds(600, None) == ["gbt", "gp", "linear", "mlp"]
    assert list(MODEL_TYPES) == ["std", "gp", "linear", "mlp", "weights"]


def test_a_new_family_is_a_candidate_counted_and_read_back() -> None:
    extended = STD.with_family(MEAN)
    assert extended.candidate_kinds(30, None) == ["gp", "linear", "mlp", "forest", "mean"]
    # Without a default rank it serves only in a blend, so never beyond BLEND_MAX_ROWS.
    assert extended.candidate_kinds(600, None) == ["gbt", "gp", "linear", "mlp"]
    assert extended.parameter_count(SHAPE) == STD.parameter_count(SHAPE) + SHAPE.out_size
    checkpoint = MeanPredictor(SHAPE, torch.tensor([2.5])).to_bytes()
    loaded = extended.load(checkpoint, device="cpu")
    assert loaded.predict(np.zeros((3, 2), dtype=np.float32)).tolist() == [[2.5]] * 3
    with pytest.raises(CheckpointUnreadable):
        STD.load(checkpoint, device="cpu")
