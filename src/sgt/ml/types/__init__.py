"""The built-in model types; importing this package registers each of them with `sgt.ml.base`."""

from sgt.ml.types import mlp, std

__all__ = ["mlp", "std"]
