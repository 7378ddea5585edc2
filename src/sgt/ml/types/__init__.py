"""The built-in model types; importing this package registers each of them with `sgt.ml.base`."""

from sgt.ml.types import gp, linear, mlp, std

__all__ = ["gp", "linear", "mlp", "std"]
