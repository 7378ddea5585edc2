"""Training states of a model and the moves between them.

untrained --upload--> queued --claim--> training --converge--> converged
                         ^                 |  (new data during training: back to queued
                         +-----upload------+   when the run ends; lease expired: queued)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class TrainingState(StrEnum):
    UNTRAINED = "untrained"
    QUEUED = "queued"
    TRAINING = "training"
    CONVERGED = "converged"


MAX_LOSS_HISTORY = 200
# Above this many outputs the status leaves out the per-output MAE list (300,000 outputs would
# make every status answer megabytes); the overall figures are always there.
MAX_PER_OUTPUT_ERRORS = 1024


@dataclass(frozen=True)
class ValidationErrors:
    """How the served weights err on their validation rows, in the units of the uploaded targets.

    `rows` validation rows; `mae`, `p95_abs_error` and `max_abs_error` over every output of every
    such row; `mae_per_output` one MAE per output, None above `MAX_PER_OUTPUT_ERRORS` outputs.
    """

    rows: int
    mae: float
    p95_abs_error: float
    max_abs_error: float
    mae_per_output: list[float] | None


@dataclass(frozen=True)
class TrainingStatus:
    """A model's training progress as storage reads it.

    Its wire form is `sgt.api.schemas.TrainStatusBody`, built from this by
    `TrainStatusBody.of`: the same fields, the state as its name and the time as contract text.
    The `val_*` figures are those of the served weights (`ValidationErrors`, flattened), written
    with every checkpoint; all None while the served weights have no validation rows.
    """

    state: TrainingState
    sample_count: int
    trained_sample_count: int
    steps: int
    train_loss: float | None
    val_loss: float | None
    loss_history: list[list[float | None]]
    updated_at: datetime | None
    val_rows: int | None = None
    val_mae: float | None = None
    val_p95_abs_error: float | None = None
    val_max_abs_error: float | None = None
    val_mae_per_output: list[float] | None = None


def append_loss(
    history: list[list[float | None]], *, steps: int, train_loss: float, val_loss: float | None
) -> list[list[float | None]]:
    """History with one more [steps, train, val] point, thinned to a bounded length."""
    point: list[float | None] = [float(steps), float(train_loss), val_loss]
    history = [*history, point]
    if len(history) > MAX_LOSS_HISTORY:
        # Keep the first point and every other older one: long runs stay visible end to end.
        history = (
            history[:1]
            + history[1 : -MAX_LOSS_HISTORY // 2 : 2]
            + history[-MAX_LOSS_HISTORY // 2 :]
        )
    return history
