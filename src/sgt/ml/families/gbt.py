"""The gradient-boosted tree candidate of `std`: one XGBoost booster for every output.

Chosen by measurement (docs/gbt_choice.md): native multi-output in one booster, a 5.6 MB CPU
wheel, fast prediction. Targets are standardised on the training rows (the validation loss is
then comparable with the other families'); inputs are not, since histogram trees split on
quantiles and are blind to an input's scale. Each step adds `rounds_per_step` rounds; the run
keeps the round count with the best validation MSE on the trainer's usual split
(`split_holdout`) and stops after `patience_rounds` without a relative gain of
`min_relative`, or at a cap of about 1,000 trees in all (prediction time grows with rounds x
outputs). A resumed run boosts anew from scratch; its start answers until then. The checkpoint
holds the booster as raw UBJSON bytes and the target scaler. XGBoost's OpenMP threads are as
many as torch's in this process (the trainer's budget; one in the API, which parallelises by
rows). Imports xgboost, torch (thread count, checkpoint tensors), numpy, `sgt.ml.base`,
`sgt.ml.checkpoints` and `sgt.ml.numerics`; never `sgt.ml.types` or the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import xgboost

from sgt.ml.base import (
    Family,
    ModelShape,
    ModelType,
    Predictor,
    Residuals,
    TrainingProgress,
    TrainingRun,
)
from sgt.ml.checkpoints import (
    CheckpointUnreadable,
    pack_checkpoint,
    read_checkpoint,
)
from sgt.ml.numerics.fitting import split_holdout

KIND = "gbt"
# At most this many trees in all (rounds x outputs), for serving time: on the skinning cases
# 50 rounds x 17 outputs predicted another pose as well as 225 rounds (RMSE 0.1053 against
# 0.1058 at 20,000 rows) in a quarter of the time (0.56 s against 2.31 s for 20,000 rows); the
# later rounds fit only the same-pose validation rows (docs/skinning.md).
MAX_TREES = 1000
# The training loss is measured on at most this many training rows (it is only reported).
TRAIN_LOSS_ROWS = 2000


@dataclass(frozen=True)
class GbtConfig:
    learning_rate: float = 0.1
    max_depth: int = 6
    min_child_weight: float = 1.0
    subsample: float = 1.0
    # Each tree sees this share of the inputs, and never fewer than `min_tree_columns` (all of
    # them when there are fewer): on wide, redundant inputs (a vertex's position in 17 joints'
    # frames) trees then spread over many of them, so an input shifted by a new pose moves the
    # prediction less (RMSE across poses 18-25 % lower on every skinning case, docs/skinning.md).
    column_share: float = 0.3
    min_tree_columns: int = 10
    rounds_per_step: int = 25
    patience_rounds: int = 50
    min_relative: float = 1e-3

    def round_cap(self, outputs: int) -> int:
        # Many outputs get few rounds (one beyond 1,000): wide targets are rarely the trees'
        # strength, and their cost must stay within the create-time parameter bound.
        return max(1, MAX_TREES // max(1, outputs))

    def columns_per_tree(self, inputs: int) -> float:
        """XGBoost's `colsample_bytree` for `inputs` inputs."""
        kept = max(math.ceil(self.column_share * inputs), min(inputs, self.min_tree_columns))
        # A hair above kept / inputs, so that XGBoost's rounding of share x inputs gives `kept`.
        return min(1.0, kept / max(1, inputs) + 1e-9)

    def params(self, inputs: int, outputs: int, threads: int, seed: int) -> dict[str, object]:
        return {
            "tree_method": "hist",
            "learning_rate": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.columns_per_tree(inputs),
            "objective": "reg:squarederror",
            "multi_strategy": "one_output_per_tree",
            "num_target": outputs,
            "nthread": threads,
            "seed": seed % (2**31),
            "verbosity": 0,
        }


def _threads() -> int:
    return max(1, torch.get_num_threads())


class GbtPredictor(Predictor):
    """The booster's first `rounds` rounds, in raw target units; no booster predicts the mean."""

    kind = KIND

    def __init__(
        self,
        *,
        shape: ModelShape,
        raw: bytes | None,
        rounds: int,
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        self.shape, self.raw, self.rounds = shape, raw, rounds
        self.mean, self.scale = mean.astype(np.float64), scale.astype(np.float64)
        self._booster: xgboost.Booster | None = None
        if raw is not None:
            self._booster = xgboost.Booster(model_file=bytearray(raw))
            self._booster.set_param({"nthread": _threads()})

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(inputs, dtype=np.float32)
        standardised = np.zeros((len(rows), self.shape.out_size))
        if self._booster is not None and len(rows):
            predicted = self._booster.inplace_predict(rows, iteration_range=(0, self.rounds))
            standardised = np.asarray(predicted, dtype=np.float64).reshape(len(rows), -1)
        return (standardised * self.scale + self.mean).astype(np.float32)

    def to_bytes(self) -> bytes:
        payload = {
            "raw": torch.frombuffer(bytearray(self.raw), dtype=torch.uint8)
            if self.raw
            else torch.zeros(0, dtype=torch.uint8),
            "rounds": self.rounds,
            "mean": torch.from_numpy(self.mean),
            "scale": torch.from_numpy(self.scale),
        }
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_gbt_payload(shape: ModelShape, payload: dict[str, object], *, device: str) -> GbtPredictor:
    """Rebuild a `GbtPredictor` (trees run on the CPU whatever `device` torch uses)."""
    raw, rounds = payload.get("raw"), payload.get("rounds")
    mean, scale = payload.get("mean"), payload.get("scale")
    if not (
        isinstance(raw, torch.Tensor)
        and isinstance(rounds, int)
        and isinstance(mean, torch.Tensor)
        and isinstance(scale, torch.Tensor)
    ):
        raise CheckpointUnreadable("gbt checkpoint lacks its booster, rounds or scaler")
    data = raw.cpu().numpy().tobytes()
    return GbtPredictor(
        shape=shape,
        raw=data or None,
        rounds=rounds,
        mean=mean.cpu().numpy(),
        scale=scale.cpu().numpy(),
    )


class GbtRun(TrainingRun):
    """Boosts `rounds_per_step` rounds a step, early-stopped on the validation rows."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        config: GbtConfig,
    ) -> None:
        self.shape, self.config = shape, config
        values = np.asarray(targets, dtype=np.float64)
        self.mean = values.mean(axis=0) if len(values) else np.zeros(shape.out_size)
        spread = values.std(axis=0) if len(values) else np.ones(shape.out_size)
        self.scale = np.where(spread > 1e-12, spread, 1.0)
        standardised = ((values - self.mean) / self.scale).astype(np.float32)
        x = np.ascontiguousarray(inputs, dtype=np.float32)
        train_rows, val_rows = split_holdout(len(x), seed=seed)
        if not len(val_rows):
            val_rows = train_rows
        self._val_rows = np.sort(val_rows)
        self._x_val, self._y_val = x[self._val_rows], standardised[self._val_rows]
        self._x_fit, self._y_fit = x[train_rows], standardised[train_rows]
        self._params = config.params(shape.in_size, shape.out_size, _threads(), seed)
        self._cap = config.round_cap(shape.out_size)
        self._dtrain = xgboost.QuantileDMatrix(self._x_fit, self._y_fit) if len(x) else None
        self._booster: xgboost.Booster | None = None
        self._rounds = 0
        self._best_rounds = 0
        self._best_mse = float("inf")
        self._gain_rounds = 0  # the round count of the last relative gain
        self._best_residuals: np.ndarray | None = None
        self._served: GbtPredictor | None = None
        self._start = start if start is not None and start.shape == shape else None
        self._steps = 0
        self._done = self._dtrain is None

    def step(self) -> TrainingProgress:
        has_improved = False
        train_loss = 0.0
        if not self._done and self._dtrain is not None:
            rounds = min(self.config.rounds_per_step, self._cap - self._rounds)
            self._booster = xgboost.train(
                self._params,
                self._dtrain,
                num_boost_round=rounds,
                xgb_model=self._booster,
            )
            self._rounds += rounds
            residuals = self._standardised(self._x_val) - self._y_val
            mse = float(np.mean(residuals.astype(np.float64) ** 2))
            if mse < self._best_mse * (1.0 - self.config.min_relative):
                self._gain_rounds = self._rounds
            if mse < self._best_mse:
                self._best_mse, self._best_rounds = mse, self._rounds
                self._best_residuals = residuals
                has_improved = True
            stalled = self._rounds - self._gain_rounds >= self.config.patience_rounds
            self._done = stalled or self._rounds >= self._cap
            sample = self._x_fit[:TRAIN_LOSS_ROWS]
            fitted = self._standardised(sample) - self._y_fit[:TRAIN_LOSS_ROWS]
            train_loss = float(np.mean(fitted.astype(np.float64) ** 2))
        self._steps += 1
        return TrainingProgress(
            steps=self._steps,
            train_loss=train_loss,
            val_loss=None if self._best_residuals is None else self._best_mse,
            has_improved=has_improved,
            is_converged=self._done,
        )

    def _standardised(self, rows: np.ndarray) -> np.ndarray:
        assert self._booster is not None
        predicted = self._booster.inplace_predict(rows, iteration_range=(0, self._rounds))
        return np.asarray(predicted, dtype=np.float32).reshape(len(rows), -1)

    def validation_residuals(self) -> Residuals | None:
        if self._best_residuals is None:
            return None
        return self._val_rows, self._best_residuals.astype(np.float64)

    def best(self) -> Predictor:
        if self._booster is None:
            return self._start if self._start is not None else GBT.initial(self.shape, seed=0)
        if self._served is None or self._served.rounds != self._best_rounds:
            kept = self._booster[: self._best_rounds]
            self._served = GbtPredictor(
                shape=self.shape,
                raw=bytes(kept.save_raw("ubj")),
                rounds=self._best_rounds,
                mean=self.mean,
                scale=self.scale,
            )
        return self._served


class GbtModelType(ModelType):
    name = "gbt"
    description = "std's gradient-boosted trees (XGBoost)"

    def __init__(self, config: GbtConfig) -> None:
        self.config = config

    def parameter_count(self, shape: ModelShape) -> int:
        # The fitted values: at most 2^depth leaves a tree, one tree per round and output (the
        # splits are bounded by the same count).
        leaves = 1 << self.config.max_depth
        return self.config.round_cap(shape.out_size) * shape.out_size * leaves + shape.in_size

    def initial(self, shape: ModelShape, *, seed: int) -> GbtPredictor:
        zeros, ones = np.zeros(shape.out_size), np.ones(shape.out_size)
        return GbtPredictor(shape=shape, raw=None, rounds=0, mean=zeros, scale=ones)

    def load(self, data: bytes, *, device: str) -> GbtPredictor:
        return read_checkpoint(data, device=device, kind=KIND, load_payload=load_gbt_payload)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> GbtRun:
        return GbtRun(
            shape=shape, inputs=inputs, targets=targets, start=start, seed=seed, config=self.config
        )


GBT = GbtModelType(GbtConfig())
# A candidate where a blend is not served (beyond std_choice.BLEND_MAX_ROWS, 500 rows): on the
# small quality tasks the GP and the blend win, and five fold runs more would cost time. Ranked
# after the GP and before the MLPs: on skin weights the validation rows (same mesh, same pose)
# favour the MLPs, while on another mesh and pose the trees were 1.8x better (docs/skinning.md),
# so the trees are kept unless another family is clearly better (std_choice.SWITCH_ERROR_RATIO).
FAMILY = Family(
    kind=KIND, model_type=GBT, load_payload=load_gbt_payload, min_rows=501, default_rank=1
)
