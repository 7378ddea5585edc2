"""The one table of model families and model types: what `std` trains and reads back, and what
users may pick by name (`list_model_type`, `create_sgt_model`).

A new family is one module in `sgt.ml.families` (its predictor, run, model type and `FAMILY`)
plus one line in `FAMILIES`. This module imports every family and type explicitly; none of them
imports it, so there is no import circle.
"""

from __future__ import annotations

from sgt.errors import UnknownModelType
from sgt.ml.base import Family, ModelType
from sgt.ml.families import forest, gp, linear, mlp
from sgt.ml.types.std import StdModelType

# `std`'s candidates, in the order it trains them. The order is part of what a seed reproduces.
FAMILIES: tuple[Family, ...] = (
    gp.FAMILY,
    linear.FAMILY,
    mlp.FAMILY,
    forest.FAMILY,
)

# Untrained, `std` answers like its MLP ensemble.
STD = StdModelType(families=FAMILIES, untrained_kind=mlp.KIND)

# The types users may pick by name; `std` is listed first.
MODEL_TYPES: dict[str, ModelType] = {
    model_type.name: model_type for model_type in (STD, gp.GP, linear.LINEAR, mlp.MLP)
}


def get_model_type(name: str) -> ModelType:
    """The registered type called `name`; raises UnknownModelType."""
    try:
        return MODEL_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(MODEL_TYPES))
        raise UnknownModelType(
            f"model_type '{name}' is unknown; expected one of: {known}"
        ) from None


def model_type_names() -> list[str]:
    """Names of every registered type, `std` first."""
    return sorted(MODEL_TYPES, key=lambda name: (name != "std", name))
