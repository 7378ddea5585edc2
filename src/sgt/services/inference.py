"""Run a model: validated inputs in, predictions out, from the in-memory cache when unchanged."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from sgt.domain.samples import to_input_matrix
from sgt.errors import ModelNotFound
from sgt.ml.base import ModelShape, Predictor, get_model_type
from sgt.ml.cache import UNTRAINED_VERSION
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import models as model_store

# Rows per block of a large prediction: small enough that a block's intermediate tensors (a few
# MB) are reused from the allocator's free lists instead of fresh pages, large enough that torch
# runs at full speed; smaller requests run in one piece.
BLOCK_ROWS = 1024


class RowParallelism:
    """Runs large batches as row blocks on a few threads, each with one torch thread.

    Torch's own intra-op threads spin and wait on each other; on a busy machine a 1-row
    prediction with two of them took 100 ms at p99 instead of 0.3 ms. So the API process runs
    torch single-threaded and parallelises here instead, across rows: predictions are
    row-independent, and the blocks depend only on the row count, so an answer never depends
    on load. Torch releases the GIL inside its kernels, so blocks really run in parallel.
    Blocks also bound memory: whole-batch intermediates of a 20,000-row request were 80 MB per
    layer, and freed arenas of every thread stayed resident (+400 MB after a few requests).
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def predict(self, predictor: Predictor, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) < 2 * BLOCK_ROWS:
            return predictor.predict(inputs)
        blocks = np.array_split(inputs, -(-len(inputs) // BLOCK_ROWS))
        if self.threads == 1:
            return np.concatenate([predictor.predict(block) for block in blocks])
        return np.concatenate(list(self._executor().map(predictor.predict, blocks)))

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sgt-rows")
            return self._pool


_parallelism = RowParallelism(1)


def set_inference_threads(threads: int) -> None:
    """How many threads one large prediction may use in this process (set at start)."""
    global _parallelism
    _parallelism = RowParallelism(threads)


def run_model(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    data: Sequence[Sequence[float]] | np.ndarray,
) -> np.ndarray:
    """Predictions (n, out_size) of the model's current best weights for `data` (n, in_size).

    Raises ModelNotFound, or InvalidSamples naming the first bad row and column.
    """
    with ctx.db.read() as session:
        found = model_store.find_model_with_checkpoint_version(
            session, owner_id=user.id, app_name=app_name, name=name
        )
        if found is None:
            raise ModelNotFound(f"you have no model '{name}' in app '{app_name}'")
        model, version = found
    inputs = to_input_matrix(data, in_size=model.in_size)
    if len(inputs) == 0:
        return np.zeros((0, model.out_size), dtype=np.float32)
    predictor = ctx.model_cache.get(
        model.id,
        version or UNTRAINED_VERSION,
        lambda: _load_predictor(
            ctx, model.id, model.model_type, ModelShape(model.in_size, model.out_size), model.seed
        ),
    )
    return _parallelism.predict(predictor, inputs)


def _load_predictor(
    ctx: ServiceContext, model_id: int, model_type: str, shape: ModelShape, seed: int
) -> Predictor:
    with ctx.db.read() as session:
        checkpoint = checkpoint_store.load_checkpoint(session, model_id)
        stored = None if checkpoint is None else (checkpoint.model_type, checkpoint.weights)
    if stored is None:
        return get_model_type(model_type).initial(shape, seed=seed)
    return get_model_type(stored[0]).load(stored[1], device=ctx.device)
