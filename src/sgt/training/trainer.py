"""Drive one training run to its end, and measure its weights, with no database in sight.

`drive_run` steps a `TrainingRun` and calls back the worker for heartbeats and checkpoints on a
clock; the callbacks decide whether the run may go on. Tested on ten rows with fake hooks.
`validation_errors` turns a run's validation residuals into the status's figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import numpy as np

from sgt.domain.training import MAX_PER_OUTPUT_ERRORS, ValidationErrors
from sgt.ml.base import Predictor, Residuals, TrainingProgress, TrainingRun
from sgt.ml.numerics.standardiser import Standardiser


class Outcome(Enum):
    CONVERGED = "converged"  # nothing more to gain on these samples
    TIME_LIMIT = "time_limit"  # ran for max_seconds; treated as converged
    NEW_DATA = "new_data"  # samples arrived since the run started: restart on all of them
    LEASE_LOST = "lease_lost"  # the model was deleted or taken over: write nothing more
    STOPPED = "stopped"  # the worker is shutting down


class Heartbeat(Enum):
    CONTINUE = "continue"
    NEW_DATA = "new_data"
    LEASE_LOST = "lease_lost"


class RunHooks(Protocol):
    def heartbeat(self, progress: TrainingProgress) -> Heartbeat:
        """Renew the lease and report progress."""

    def checkpoint(self, best: Predictor, progress: TrainingProgress) -> bool:
        """Store `best`; False when the lease is lost (nothing was stored)."""

    def should_stop(self) -> bool:
        """True once the worker has been asked to shut down."""


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    progress: TrainingProgress | None
    has_unsaved_improvement: bool


def drive_run(
    run: TrainingRun,
    hooks: RunHooks,
    *,
    heartbeat_seconds: float,
    checkpoint_seconds: float,
    max_seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> RunResult:
    """Step `run` until it converges, the time limit passes, or a hook says stop.

    The best weights are checkpointed when they improved and `checkpoint_seconds` passed since
    the last checkpoint; the caller writes the final checkpoint when `has_unsaved_improvement`.
    """
    started = last_beat = last_checkpoint = clock()
    progress: TrainingProgress | None = None
    unsaved = False
    while True:
        if hooks.should_stop():
            return RunResult(Outcome.STOPPED, progress, unsaved)
        progress = run.step()
        unsaved = unsaved or progress.has_improved
        now = clock()
        if progress.is_converged:
            return RunResult(Outcome.CONVERGED, progress, unsaved)
        if now - started >= max_seconds:
            return RunResult(Outcome.TIME_LIMIT, progress, unsaved)
        if unsaved and now - last_checkpoint >= checkpoint_seconds:
            if not hooks.checkpoint(run.best(), progress):
                return RunResult(Outcome.LEASE_LOST, progress, False)
            unsaved, last_checkpoint, last_beat = False, now, now
        if now - last_beat >= heartbeat_seconds:
            last_beat = now
            beat = hooks.heartbeat(progress)
            if beat is Heartbeat.LEASE_LOST:
                return RunResult(Outcome.LEASE_LOST, progress, False)
            if beat is Heartbeat.NEW_DATA:
                return RunResult(Outcome.NEW_DATA, progress, unsaved)


def target_scale(targets: np.ndarray) -> np.ndarray:
    """The per-column scale a run standardises `targets` (all its rows) by, in float64."""
    scale: np.ndarray = Standardiser.fit(targets, device="cpu").scale.double().numpy()
    return scale


def validation_errors(
    residuals: Residuals | None, *, target_scale: np.ndarray
) -> ValidationErrors | None:
    """The status's error figures for weights whose `validation_residuals()` are `residuals`
    (standardised), in target units: each residual times its column's `target_scale`.

    Exact up to float rounding and cheap (no prediction: the run already has the residuals).
    p95 and max are over every output of every validation row (numpy's linear percentile); the
    per-output MAE is left out above `MAX_PER_OUTPUT_ERRORS` outputs. None without rows.
    """
    if residuals is None or not len(residuals[0]):
        return None
    rows, standardised = residuals
    absolute = np.abs(np.asarray(standardised, dtype=np.float64)) * target_scale
    outputs = absolute.shape[1]
    return ValidationErrors(
        rows=len(rows),
        mae=float(absolute.mean()),
        p95_abs_error=float(np.percentile(absolute, 95)),
        max_abs_error=float(absolute.max()),
        mae_per_output=absolute.mean(axis=0).tolist() if outputs <= MAX_PER_OUTPUT_ERRORS else None,
    )
