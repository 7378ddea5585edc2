"""The plug-in interface every model type implements, and the registry that finds them.

A model type turns (inputs, targets) into a `Predictor` through a `TrainingRun` it starts. The
trainer (`sgt.training`) drives runs and stores `Predictor.to_bytes()` as checkpoints; the API
loads them back with `ModelType.load` and calls `predict`. Neither side knows which type it holds.
This module imports numpy and the standard library only; implementations import torch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from sgt.errors import UnknownModelType


@dataclass(frozen=True)
class ModelShape:
    """Input and output widths of a model."""

    in_size: int
    out_size: int


@dataclass(frozen=True)
class TrainingProgress:
    """What a run reports after each `step`.

    `steps` counts optimisation steps since the run started; losses are mean squared errors on
    standardised targets (comparable across models); `has_improved` says the best weights changed
    since the previous report (a checkpoint is worth writing); `is_converged` says further steps
    would not help, so the trainer stops spending CPU on the model.
    """

    steps: int
    train_loss: float
    val_loss: float | None
    has_improved: bool
    is_converged: bool


class Predictor(ABC):
    """Frozen weights that answer predictions: exactly what a checkpoint holds."""

    @abstractmethod
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Map float32 (n, in_size) to float32 (n, out_size); n may be 0; deterministic."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """Serialise for storage; `ModelType.load` reads it back on any device."""


class TrainingRun(ABC):
    """One training of one model on a fixed set of samples, advanced step by step."""

    @abstractmethod
    def step(self) -> TrainingProgress:
        """Do a bounded amount of work (well under a second of CPU at typical sizes)."""

    @abstractmethod
    def best(self) -> Predictor:
        """The best weights so far (by validation error where there is a validation split)."""


class ModelType(ABC):
    """A kind of model users can pick by name in `create_sgt_model`."""

    name: str
    description: str

    @abstractmethod
    def parameter_count(self, shape: ModelShape) -> int:
        """Upper bound of the trainable parameters a model of this shape allocates."""

    @abstractmethod
    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        """Untrained weights: what `run` answers before the first checkpoint."""

    @abstractmethod
    def load(self, data: bytes, *, device: str) -> Predictor:
        """Read a checkpoint written by `Predictor.to_bytes`, onto `device` ("cpu" or "cuda")."""

    @abstractmethod
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
        """Begin training on float32 samples, from `start`'s weights when given."""


_REGISTRY: dict[str, ModelType] = {}


def register_model_type(model_type: ModelType) -> ModelType:
    """Make a type available by its name; called by each implementation module."""
    _REGISTRY[model_type.name] = model_type
    return model_type


def get_model_type(name: str) -> ModelType:
    """The registered type called `name`; raises UnknownModelType."""
    _load_builtin_types()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownModelType(
            f"model_type '{name}' is unknown; expected one of: {known}"
        ) from None


def model_type_names() -> list[str]:
    """Names of every registered type, `std` first."""
    _load_builtin_types()
    return sorted(_REGISTRY, key=lambda name: (name != "std", name))


def _load_builtin_types() -> None:
    # Imported lazily so that importing the interface never pays for torch.
    import sgt.ml.types  # noqa: F401
