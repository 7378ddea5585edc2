"""Large predictions split by rows across a few threads, each running torch single-threaded."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeGuard, runtime_checkable

import numpy as np

from sgt.ml.base import ModelShape, Predictor

# Rows per block of a large prediction: small enough that a block's intermediate tensors (a few
# MB) are reused from the allocator's free lists instead of fresh pages, large enough that torch
# runs at full speed; smaller requests run in one piece.
BLOCK_ROWS = 1024
# A few rows of a model reconstructing at least this many outputs are split by columns instead:
# one pose of 150,000 vertex offsets from 128 shapes reads 77 MB, about 5 ms on one thread (the
# memory bandwidth one core gets), and a thread pool's hand-off costs a few tens of microseconds.
COLUMN_SPLIT_MIN_OUTPUTS = 32_768


@runtime_checkable
class Reconstructs(Protocol):
    """A predictor whose outputs are a product of a few coefficients per row with a wide matrix
    (`sgt.ml.types.std_compressed`): the product can run in column blocks."""

    shape: ModelShape

    def coefficients(self, inputs: np.ndarray) -> np.ndarray: ...

    def reconstruct(self, coefficients: np.ndarray, start: int, stop: int) -> np.ndarray: ...


class RowParallelism:
    """Runs large batches as row blocks on a few threads, each with one torch thread.

    Torch's own intra-op threads spin and wait on each other, which on a busy machine makes
    small predictions slow at the tail. So the API process runs torch single-threaded and
    parallelises here instead, across rows: predictions are row-independent, and the blocks
    depend only on the row count, so an answer never depends on load. Torch releases the GIL
    inside its kernels, so blocks really run in parallel. Blocks also bound memory (whole-batch
    intermediates stay resident in every thread's arenas). Figures: docs/quality.md.
    """

    def __init__(self, threads: int) -> None:
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def predict(self, predictor: Predictor, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) < 2 * BLOCK_ROWS:
            if self._splits_by_columns(predictor):
                return self._by_columns(predictor, inputs)
            return predictor.predict(inputs)
        blocks = np.array_split(inputs, -(-len(inputs) // BLOCK_ROWS))
        if self.threads == 1:
            return np.concatenate([predictor.predict(block) for block in blocks])
        return np.concatenate(list(self._executor().map(predictor.predict, blocks)))

    def predict_with_std(
        self, predictor: Predictor, inputs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`predictor.predict_with_std` in the same row blocks as `predict`."""
        if len(inputs) < 2 * BLOCK_ROWS:
            return predictor.predict_with_std(inputs)
        blocks = np.array_split(inputs, -(-len(inputs) // BLOCK_ROWS))
        if self.threads == 1:
            parts = [predictor.predict_with_std(block) for block in blocks]
        else:
            parts = list(self._executor().map(predictor.predict_with_std, blocks))
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _splits_by_columns(self, predictor: Predictor) -> TypeGuard[Reconstructs]:
        return (
            self.threads > 1
            and predictor.shape.out_size >= COLUMN_SPLIT_MIN_OUTPUTS
            and isinstance(predictor, Reconstructs)
        )

    def _by_columns(self, predictor: Reconstructs, inputs: np.ndarray) -> np.ndarray:
        """The reconstruction in one column block per thread; the blocks depend only on the
        thread count, so the answer does not depend on load."""
        coefficients = predictor.coefficients(inputs)
        out_size = predictor.shape.out_size
        bounds = np.linspace(0, out_size, self.threads + 1).astype(int)
        outputs = np.empty((len(inputs), out_size), dtype=np.float32)

        def fill(block: int) -> None:
            start, stop = int(bounds[block]), int(bounds[block + 1])
            outputs[:, start:stop] = predictor.reconstruct(coefficients, start, stop)

        list(self._executor().map(fill, range(self.threads)))
        return outputs

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sgt-rows")
            return self._pool


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
