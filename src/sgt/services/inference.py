"""Run a model: validated inputs in, predictions (and, on request, their calibrated standard
deviations and out-of-range flags) out, from the in-memory cache when unchanged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sgt.domain.samples import to_input_matrix
from sgt.errors import ModelNotFound
from sgt.ml.base import ModelShape, Predictor
from sgt.ml.cache import UNTRAINED_VERSION
from sgt.ml.registry import get_model_type
from sgt.services.blocking import refuse_blocking, refuse_connection_wait
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import models as model_store


@dataclass(frozen=True)
class Prediction:
    """What `run_model_with_std` answers: mean and std (n, out_size) float32, out_of_range (n,)."""

    mean: np.ndarray
    std: np.ndarray
    out_of_range: np.ndarray


def run_model(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    data: Sequence[Sequence[float]] | np.ndarray,
) -> np.ndarray:
    """Predictions (n, out_size) of the model's current best weights for `data` (n, in_size).

    Raises ModelNotFound, or InvalidSamples naming the first bad row and column. On the event
    loop, a connection wait or a model not in the cache raises NeedsThread (sgt.services.blocking).
    """
    shape, inputs, predictor = find_predictor(ctx, user, app_name=app_name, name=name, data=data)
    if len(inputs) == 0:
        return np.zeros((0, shape.out_size), dtype=np.float32)
    return ctx.parallelism.predict(predictor(), inputs)


def run_model_with_std(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    data: Sequence[Sequence[float]] | np.ndarray,
) -> Prediction:
    """As `run_model`, with each prediction's calibrated standard deviation (docs/uncertainty.md)
    and whether its row lies outside the training inputs' range. Raises as `run_model`."""
    shape, inputs, load = find_predictor(ctx, user, app_name=app_name, name=name, data=data)
    if len(inputs) == 0:
        empty = np.zeros((0, shape.out_size), dtype=np.float32)
        return Prediction(empty, empty, np.zeros(0, dtype=bool))
    predictor = load()
    mean, std = ctx.parallelism.predict_with_std(predictor, inputs)
    return Prediction(mean, std, predictor.out_of_range(inputs))


def find_predictor(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    data: Sequence[Sequence[float]] | np.ndarray,
    field: str = "data",
) -> tuple[ModelShape, np.ndarray, Callable[[], Predictor]]:
    """The model's shape, `data` validated as its float32 inputs, and a function returning its
    current predictor (from the cache, loading the checkpoint when it changed); nothing is
    loaded until it is called, so an empty request needs no checkpoint.

    Raises ModelNotFound, or InvalidSamples naming the first bad row and column."""
    refuse_connection_wait(ctx)
    with ctx.db.quick_read() as reader:
        model = model_store.find_model_to_run(
            reader, owner_id=user.id, app_name=app_name, name=name
        )
    if model is None:
        raise ModelNotFound(f"you have no model '{name}' in app '{app_name}'")
    inputs = to_input_matrix(data, in_size=model.in_size, field=field)
    shape = ModelShape(model.in_size, model.out_size)

    def predictor() -> Predictor:
        return ctx.model_cache.get(
            model.id,
            model.version or UNTRAINED_VERSION,
            lambda: _load_predictor(ctx, model.id, model.model_type, shape, model.seed),
        )

    return shape, inputs, predictor


def _load_predictor(
    ctx: ServiceContext, model_id: int, model_type: str, shape: ModelShape, seed: int
) -> Predictor:
    refuse_blocking("checkpoint load")  # reads and unpickles up to hundreds of MB
    with ctx.db.read() as session:
        checkpoint = checkpoint_store.load_checkpoint(session, model_id)
        stored = None if checkpoint is None else (checkpoint.model_type, checkpoint.weights)
    if stored is None:
        return get_model_type(model_type).initial(shape, seed=seed)
    return get_model_type(stored[0]).load(stored[1], device=ctx.device)
