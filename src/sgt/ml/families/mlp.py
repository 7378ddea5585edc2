"""The `mlp` model type: an ensemble of standardised MLPs trained with AdamW and early stopping.

Also the MLP ensemble candidate that `std` runs (`FAMILY`). Imports torch, numpy, `sgt.ml.base`,
`sgt.ml.checkpoints` and `sgt.ml.numerics`; never `sgt.ml.types` or the registry.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

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
from sgt.ml.families.mlp_net import EnsembleMlpNet, ensemble_parameter_count
from sgt.ml.numerics.fitting import MIN_ROWS_FOR_VALIDATION, Plateau, split_holdout
from sgt.ml.numerics.standardiser import Standardiser

KIND = "mlp"


@dataclass(frozen=True)
class MlpConfig:
    """Architecture and optimiser settings; the architecture part is stored in checkpoints."""

    width: int = 128
    depth: int = 3
    members: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 1e-3
    updates_per_step: int = 20
    patience_steps: int = 15
    max_cuts: int = 2
    max_steps: int = 3000


_SERVING_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class MlpPredictor(Predictor):
    """Ensemble weights plus the standardisers they were trained with; predicts the member mean."""

    kind = KIND

    def __init__(
        self,
        *,
        shape: ModelShape,
        config: MlpConfig,
        net: EnsembleMlpNet,
        inputs_scaler: Standardiser,
        targets_scaler: Standardiser,
        serving_dtype: str = "float32",
    ) -> None:
        self.shape = shape
        self.config = config
        self.net = net
        self.inputs_scaler = inputs_scaler
        self.targets_scaler = targets_scaler
        self.device = str(inputs_scaler.mean.device)
        # Serving uses a copy with both standardisers folded into the first and last layers, so a
        # prediction is exactly the net's matmuls; the member mean is folded in as 1/K.
        self._serving_net = copy.deepcopy(net).eval()
        self._serving_net.requires_grad_(False)
        self._serving_net.fold_affine_input(
            1.0 / inputs_scaler.scale, -inputs_scaler.mean / inputs_scaler.scale
        )
        members = float(config.members)
        self._serving_net.fold_affine_output(
            targets_scaler.scale / members, targets_scaler.mean / members
        )
        self._serving_net.to(_SERVING_DTYPES[serving_dtype])
        self._serving_dtype = serving_dtype  # a name numpy and the checkpoint both read

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(inputs, dtype=self._serving_dtype)
        with torch.inference_mode():
            batch = torch.from_numpy(rows).to(self.device)
            outputs = self._serving_net(batch).sum(dim=0)
            return np.asarray(outputs.cpu().numpy(), dtype=np.float32)

    def raw_spread(self, inputs: np.ndarray) -> np.ndarray | None:
        """Standard deviation across the ensemble's members, in target units (None for a single
        member). Every member was trained without the validation rows, so this is also the
        held-out spread there."""
        if self.config.members < 2:
            return None
        rows = np.ascontiguousarray(inputs, dtype=np.float32)
        with torch.inference_mode():
            batch = self.inputs_scaler.apply(torch.from_numpy(rows).to(self.device))
            members = self.net(batch)
            spread = members.std(dim=0, correction=0) * self.targets_scaler.scale
            return np.asarray(spread.cpu().numpy(), dtype=np.float64)

    def predict_standardised(self, inputs: torch.Tensor) -> torch.Tensor:
        """Member-mean output on standardised inputs, in standardised target units."""
        with torch.inference_mode():
            outputs: torch.Tensor = self.net(inputs).mean(dim=0)
            return outputs

    def to_bytes(self) -> bytes:
        payload = {
            "config": asdict(self.config),
            "net": {key: value.detach().cpu() for key, value in self.net.state_dict().items()},
            "inputs_scaler": self.inputs_scaler.to_state(),
            "targets_scaler": self.targets_scaler.to_state(),
            "serving_dtype": self._serving_dtype,
        }
        return pack_checkpoint(
            kind=KIND, shape=self.shape, payload=payload, calibration=self.calibration
        )


def load_mlp_payload(shape: ModelShape, payload: dict[str, object], *, device: str) -> MlpPredictor:
    """Rebuild an `MlpPredictor` from a checkpoint payload."""
    config = MlpConfig(**payload["config"])  # type: ignore[arg-type]
    net = build_net(shape, config).to(device)
    net.load_state_dict(payload["net"])  # type: ignore[arg-type]
    return MlpPredictor(
        shape=shape,
        config=config,
        net=net,
        inputs_scaler=Standardiser.from_state(payload["inputs_scaler"], device=device),  # type: ignore[arg-type]
        targets_scaler=Standardiser.from_state(payload["targets_scaler"], device=device),  # type: ignore[arg-type]
        # Checkpoints from before the field served in float32.
        serving_dtype=str(payload.get("serving_dtype", "float32")),
    )


def build_net(shape: ModelShape, config: MlpConfig) -> EnsembleMlpNet:
    return EnsembleMlpNet(
        shape.in_size,
        shape.out_size,
        width=config.width,
        depth=config.depth,
        members=config.members,
    )


class MlpRun(TrainingRun):
    """Minibatch AdamW on a holdout split; each member keeps its own best-validation weights."""

    def __init__(
        self,
        *,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        start: Predictor | None,
        seed: int,
        device: str,
        config: MlpConfig,
    ) -> None:
        self.shape = shape
        self.config = config
        self.device = device
        self.inputs_scaler = Standardiser.fit(inputs, device=device)
        self.targets_scaler = Standardiser.fit(targets, device=device)
        x_all = self.inputs_scaler.apply(
            torch.as_tensor(inputs, dtype=torch.float32, device=device)
        )
        y_all = self.targets_scaler.apply(
            torch.as_tensor(targets, dtype=torch.float32, device=device)
        )
        train_rows, val_rows = split_holdout(len(inputs), seed=seed)
        self._val_rows = val_rows
        self._x_train, self._y_train = x_all[train_rows], y_all[train_rows]
        # Without a validation split the training rows themselves choose the best weights.
        self.has_validation = len(val_rows) > 0
        self._x_val = x_all[val_rows] if self.has_validation else self._x_train
        self._y_val = y_all[val_rows] if self.has_validation else self._y_train
        self._generator = torch.Generator().manual_seed(seed)
        self.net = self._initial_net(start)
        self._best_net = copy.deepcopy(self.net)
        self._optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self._plateau = Plateau(
            patience=config.patience_steps, max_cuts=config.max_cuts, max_reports=config.max_steps
        )
        self._member_best = self._member_losses(self.net).tolist()
        self.best_val_loss = self._ensemble_loss(self._best_net)
        self._best_predictor: MlpPredictor | None = None
        self.steps = 0

    def _initial_net(self, start: Predictor | None) -> EnsembleMlpNet:
        net = build_net(self.shape, self.config)
        if (
            isinstance(start, MlpPredictor)
            and start.shape == self.shape
            and _same_architecture(start.config, self.config)
        ):
            net.load_state_dict(start.net.state_dict())
            net = net.to(self.device)
            _restandardise(net, start, self.inputs_scaler, self.targets_scaler)
            return net
        net.initialise(self._generator)
        return net.to(self.device)

    def _member_losses(self, net: EnsembleMlpNet) -> torch.Tensor:
        with torch.no_grad():
            errors = net(self._x_val) - self._y_val
            losses: torch.Tensor = errors.square().mean(dim=(1, 2)).cpu()
            return losses

    def _ensemble_loss(self, net: EnsembleMlpNet) -> float:
        with torch.no_grad():
            return float((net(self._x_val).mean(dim=0) - self._y_val).square().mean())

    def step(self) -> TrainingProgress:
        train_loss = self._train_updates()
        self.steps += 1
        losses = self._member_losses(self.net)
        has_improved = False
        for member, loss in enumerate(losses.tolist()):
            if loss < self._member_best[member]:
                self._member_best[member] = loss
                self._best_net.load_member_state(member, self.net.member_state(member))
                has_improved = True
        if has_improved:
            self.best_val_loss = self._ensemble_loss(self._best_net)
            self._best_predictor = None
        self._plateau.report(float(losses.mean()))
        if self._plateau.should_cut():
            for group in self._optimizer.param_groups:
                group["lr"] *= 0.3
        return TrainingProgress(
            steps=self.steps * self.config.updates_per_step,
            train_loss=train_loss,
            val_loss=self.best_val_loss if self.has_validation else None,
            has_improved=has_improved,
            is_converged=self._plateau.is_done,
        )

    def _train_updates(self) -> float:
        members = self.config.members
        row_count = self._x_train.shape[0]
        batch_size = min(row_count, max(32, min(256, row_count // 10)))
        total = 0.0
        for _ in range(self.config.updates_per_step):
            rows = torch.randint(row_count, (members, batch_size), generator=self._generator).to(
                self.device
            )
            predictions = self.net(self._x_train[rows])
            # Summed over members so that each member's gradient does not shrink with K.
            loss = (predictions - self._y_train[rows]).square().mean(dim=(1, 2)).sum()
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._optimizer.step()
            total += float(loss.detach()) / members
        return total / self.config.updates_per_step

    def validation_residuals(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(row indices, residuals on standardised targets) of the best weights on the held-out
        rows; None without a validation split."""
        if not self.has_validation:
            return None
        with torch.no_grad():
            residuals = self._best_net(self._x_val).mean(dim=0) - self._y_val
        return self._val_rows, residuals.cpu().double().numpy()

    def best(self) -> MlpPredictor:
        if self._best_predictor is None:
            self._best_predictor = MlpPredictor(
                shape=self.shape,
                config=self.config,
                net=copy.deepcopy(self._best_net),
                inputs_scaler=self.inputs_scaler,
                targets_scaler=self.targets_scaler,
            )
        return self._best_predictor


def _same_architecture(left: MlpConfig, right: MlpConfig) -> bool:
    return (left.width, left.depth, left.members) == (right.width, right.depth, right.members)


def _restandardise(
    net: EnsembleMlpNet,
    start: MlpPredictor,
    inputs_scaler: Standardiser,
    targets_scaler: Standardiser,
) -> None:
    # The new data has new statistics; rewrite the first and last layers so the net computes the
    # same function of raw inputs as `start` did, then training resumes from there.
    old_x, old_y = start.inputs_scaler, start.targets_scaler
    device = inputs_scaler.mean.device
    net.fold_affine_input(
        inputs_scaler.scale / old_x.scale.to(device),
        (inputs_scaler.mean - old_x.mean.to(device)) / old_x.scale.to(device),
    )
    net.fold_affine_output(
        old_y.scale.to(device) / targets_scaler.scale,
        (old_y.mean.to(device) - targets_scaler.mean) / targets_scaler.scale,
    )


class MlpModelType(ModelType):
    """Standardised MLP ensemble; `members=1` is the plain `mlp` type."""

    def __init__(self, *, name: str, description: str, config: MlpConfig) -> None:
        self.name = name
        self.description = description
        self.config = config

    def parameter_count(self, shape: ModelShape) -> int:
        c = self.config
        return ensemble_parameter_count(
            shape.in_size, shape.out_size, width=c.width, depth=c.depth, members=c.members
        )

    def initial(self, shape: ModelShape, *, seed: int) -> MlpPredictor:
        net = build_net(shape, self.config)
        net.initialise(torch.Generator().manual_seed(seed))
        return MlpPredictor(
            shape=shape,
            config=self.config,
            net=net,
            inputs_scaler=Standardiser.identity(shape.in_size, device="cpu"),
            targets_scaler=Standardiser.identity(shape.out_size, device="cpu"),
            # Untrained outputs are near 0, where float32's kernel choice for one row or many
            # shows as a relative error; in float64 a row answers the same in any batch.
            serving_dtype="float64",
        )

    def load(self, data: bytes, *, device: str) -> MlpPredictor:
        return read_checkpoint(data, device=device, kind=KIND, load_payload=load_mlp_payload)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> MlpRun:
        return MlpRun(
            shape=shape,
            inputs=inputs,
            targets=targets,
            start=start,
            seed=seed,
            device=device,
            config=self.config,
        )


MLP = MlpModelType(
    name="mlp",
    description=(
        "A single standardised MLP (3 hidden layers of 128 SiLU units) trained with AdamW, a "
        "20% validation split, best-validation weights and early stopping. Pick it when you "
        "have thousands of rows or more and want a small network that is fast to serve, and "
        "accept some variance between trainings; otherwise `std` is as good or better."
    ),
    config=MlpConfig(),
)
# `std`'s MLP candidate: four narrow members cost about 1.4 times one 128-wide MLP to serve.
ENSEMBLE = MlpConfig(members=4, width=64)


def ensemble_family(config: MlpConfig) -> Family:
    """`std`'s MLP candidate with `config` (tests and benchmarks pass smaller or larger ones).
    It needs a validation split; it is `std`'s default where the GP does not run."""
    model_type = MlpModelType(name="std-ensemble", description="std's MLP ensemble", config=config)
    return Family(
        kind=KIND,
        model_type=model_type,
        load_payload=load_mlp_payload,
        min_rows=MIN_ROWS_FOR_VALIDATION,
        default_rank=2,
    )


FAMILY = ensemble_family(ENSEMBLE)
