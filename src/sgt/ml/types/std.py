"""The `std` model type: the robust default, chosen automatically by the data.

First version: a standardised MLP ensemble. Imports the other model types of this package.
"""

from __future__ import annotations

from sgt.ml.base import register_model_type
from sgt.ml.types.mlp import MlpConfig, MlpModelType

STD = register_model_type(
    MlpModelType(
        name="std",
        description=(
            "The default: inputs and targets standardised from the training data, a validation "
            "split, weight decay, best weights kept and early stopping. Pick it unless you know "
            "better."
        ),
        config=MlpConfig(members=4),
    )
)
