"""Plain functions that make users, models and samples, with keyword overrides for every field."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from sgt.domain.models import ModelSpec
from sgt.services import models as model_service
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser, authenticate, put_user

SYSTEM_KEY = "test-system-key"  # the system key of the `settings` fixture

_numbers = itertools.count(1)


def unique(prefix: str) -> str:
    """A name no other call in this test run returns."""
    return f"{prefix}-{next(_numbers)}"


def make_user(
    ctx: ServiceContext,
    *,
    secret_id: str | None = None,
    secret_key: str = "key-of-the-user",
    doc: str = "",
) -> CurrentUser:
    """A stored user, authenticated as a request would be."""
    secret_id = secret_id or unique("user")
    put_user(ctx, secret_id=secret_id, secret_key=secret_key, doc=doc)
    return authenticate(ctx, secret_id, secret_key)


def make_model(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    name: str | None = None,
    app_name: str = "app",
    model_type: str = "std",
    in_size: int = 3,
    out_size: int = 2,
    client_data: Any = None,
    is_public: bool = False,
) -> str:
    """A new untrained model of `user`; returns its name."""
    name = name or unique("model")
    model_service.create_model(
        ctx,
        user,
        app_name=app_name,
        name=name,
        spec=ModelSpec(model_type, in_size, out_size),
        client_data=client_data,
        is_public=is_public,
    )
    return name


def smooth_function(inputs: np.ndarray) -> np.ndarray:
    """A smooth 3 -> 2 function the std model type learns from a few hundred samples."""
    first = np.sin(2.0 * inputs[:, 0]) + 0.5 * inputs[:, 1] * inputs[:, 2]
    second = np.cos(inputs[:, 1]) - 0.3 * inputs[:, 0] ** 2 + 0.2 * inputs[:, 2]
    return np.stack([first, second], axis=1).astype(np.float32)


def make_samples(
    rows: int = 10, *, in_size: int = 3, out_size: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) as float32 arrays: the smooth function for 3 -> 2, random otherwise."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, in_size)).astype(np.float32)
    if (in_size, out_size) == (3, 2):
        return inputs, smooth_function(inputs)
    return inputs, rng.normal(size=(rows, out_size)).astype(np.float32)


def make_pairs(rows: int = 10, **options: Any) -> list[list[list[float]]]:
    """Samples as the API's `train_data`: a list of [input, label] pairs."""
    inputs, targets = make_samples(rows, **options)
    return [[x.tolist(), y.tolist()] for x, y in zip(inputs, targets, strict=True)]


def r_squared(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Coefficient of determination, averaged over the output columns."""
    targets = np.asarray(targets, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    residual = ((targets - predictions) ** 2).sum(axis=0)
    total = ((targets - targets.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / total))
