"""The `std` model type: the robust default, which picks its model family from the data.

Candidates are trained one after another on the same standardised data: every family the
registry lists that fits the row count (an exact GP, ridge regression, an MLP ensemble and, on
few rows, a forest of randomised trees). On up to a few hundred rows (`BLEND_MAX_ROWS`) `std`
serves a stacked blend of them; on more rows the best-ranked family is the default and another
replaces it only where its validation error is clearly lower (`std_choice`). The run itself is
`std_run`; its checkpoints are read by `std_checkpoints`. `std` receives its families from
`sgt.ml.registry` and imports no family module. With many outputs (`std_compressed`) the
candidates learn principal-shape coefficients instead of every output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgt.ml.base import Family, ModelShape, ModelType, Predictor
from sgt.ml.types.std_checkpoints import load_std_checkpoint
from sgt.ml.types.std_choice import candidate_kinds
from sgt.ml.types.std_compressed import (
    COMPRESS_MIN_OUT_SIZE,
    CompressedPredictor,
    CompressedRun,
    coefficient_shape,
    compressed_parameter_count,
)
from sgt.ml.types.std_run import StdRun


class StdModelType(ModelType):
    """`std` over `families` (in training order); untrained, it answers like the family
    `untrained_kind`'s model type."""

    name = "std"
    description = (
        "The default, and the right choice unless you know better. Inputs and targets are "
        "standardised from the training data; an exact Gaussian process (on up to 1500 rows), "
        "ridge regression and an ensemble of 4 MLPs (AdamW, weight decay, best-validation "
        "weights, early stopping) are each trained, joined by a forest of 100 randomised trees "
        "up to 150 rows. Up to 500 rows it serves their weighted average, the weights chosen by "
        "5-fold cross-validation (stacking); with more, gradient-boosted trees (XGBoost) join "
        "them, and the GP (the trees beyond 3000 rows) is kept unless another is clearly "
        "better on validation rows. Strong from a dozen rows "
        "to many thousands; more samples resume from the current weights. From 2048 outputs on, "
        "the candidates learn the coefficients of the targets' leading principal shapes."
    )

    def __init__(self, *, families: Sequence[Family], untrained_kind: str) -> None:
        self.families = {family.kind: family for family in families}
        self.untrained_kind = untrained_kind

    def with_family(self, family: Family) -> StdModelType:
        """A `std` whose family of that kind is `family` (a smaller ensemble for a test, say)."""
        families = [family if f.kind == family.kind else f for f in self.families.values()]
        if family.kind not in self.families:
            families.append(family)
        return StdModelType(families=families, untrained_kind=self.untrained_kind)

    def candidate_kinds(self, rows: int, start: Predictor | None) -> list[str]:
        """The families a run on `rows` rows trains, in order (the start's first)."""
        return candidate_kinds(list(self.families.values()), rows, start)

    def parameter_count(self, shape: ModelShape) -> int:
        if is_compressed(shape):
            return compressed_parameter_count(shape, self._direct_count(coefficient_shape(shape)))
        return self._direct_count(shape)

    def _direct_count(self, shape: ModelShape) -> int:
        # All candidates are in memory together while training, and a blend keeps them all.
        return sum(family.model_type.parameter_count(shape) for family in self.families.values())

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        if is_compressed(shape):
            # Never build an untrained network as wide as every output: answer 0s.
            inner = self._untrained.initial(ModelShape(shape.in_size, 1), seed=seed)
            return CompressedPredictor.zeros(shape, inner=inner)
        return self._untrained.initial(shape, seed=seed)

    def load(self, data: bytes, *, device: str) -> Predictor:
        return load_std_checkpoint(data, device=device, families=self.families)

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> StdRun | CompressedRun:
        if is_compressed(shape):
            # The shapes are refitted to all the data, so the coefficient run starts afresh.
            return CompressedRun(
                shape=shape,
                inputs=inputs,
                targets=targets,
                untrained=start if start is not None else self.initial(shape, seed=seed),
                make_coefficient_run=lambda width, rows, coefficients: self.start_training(
                    width, rows, coefficients, start=None, seed=seed, device=device
                ),
                seed=seed,
            )
        return StdRun(
            families=self.families,
            untrained=self._untrained,
            shape=shape,
            inputs=inputs,
            targets=targets,
            start=start,
            seed=seed,
            device=device,
        )

    @property
    def _untrained(self) -> ModelType:
        return self.families[self.untrained_kind].model_type


def is_compressed(shape: ModelShape) -> bool:
    """Whether `std` learns principal-shape coefficients rather than each output directly."""
    return shape.out_size >= COMPRESS_MIN_OUT_SIZE
