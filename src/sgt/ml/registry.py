"""The one table of model families and model types: what `std` trains and reads back, and what
users may pick by name (`list_model_type`, `create_sgt_model`).

A new family is one module in `sgt.ml.families` (its predictor, run, model type and `FAMILY`)
plus one line in `FAMILIES`. This module imports every family and type explicitly; none of them
imports it, so there is no import circle.
"""

from __future__ import annotations

from sgt.domain.models import split_stored_type
from sgt.errors import UnknownModelType
from sgt.ml.base import Family, ModelType
from sgt.ml.families import forest, gbt, gp, linear, mlp
from sgt.ml.types.std import StdModelType
from sgt.ml.types.weights import WeightsModelType

# `std`'s candidates, in the order it trains them. The order is part of what a seed reproduces.
FAMILIES: tuple[Family, ...] = (
    # First: on thousands of rows it is the quickest to converge and, on skin weights, the best
    # (docs/skinning.md), so a run stopped at its time cap has it.
    gbt.FAMILY,
    gp.FAMILY,
    linear.FAMILY,
    mlp.FAMILY,
    forest.FAMILY,
)

# Untrained, `std` answers like its MLP ensemble.
STD = StdModelType(families=FAMILIES, untrained_kind=mlp.KIND)

# Skin weights: `std` with every prediction projected onto the simplex.
WEIGHTS = WeightsModelType(inner=STD)

# The types users may pick by name; `std` is listed first.
MODEL_TYPES: dict[str, ModelType] = {
    model_type.name: model_type for model_type in (STD, gp.GP, linear.LINEAR, mlp.MLP, WEIGHTS)
}


def get_model_type(name: str) -> ModelType:
    """The registered type called `name`, or stored as `name` ("weights:4" is `weights` with
    max_influences 4, see `ModelSpec.stored_type`); raises UnknownModelType."""
    try:
        type_name, max_influences = split_stored_type(name)
        model_type = MODEL_TYPES[type_name]
    except (KeyError, ValueError):
        known = ", ".join(sorted(MODEL_TYPES))
        raise UnknownModelType(
            f"model_type '{name}' is unknown; expected one of: {known}"
        ) from None
    if max_influences is None:
        return model_type
    if not isinstance(model_type, WeightsModelType):
        raise UnknownModelType(f"model_type '{type_name}' takes no max_influences")
    return model_type.limited_to(max_influences)


def model_type_names() -> list[str]:
    """Names of every registered type, `std` first."""
    return sorted(MODEL_TYPES, key=lambda name: (name != "std", name))
