"""Counts over the whole database for monitoring: read-only, one cheap aggregate each.

Each reads the training-state rows only (one small row per model), never the sample blobs.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sgt.domain.training import TrainingState
from sgt.storage.tables import TrainingRow


def count_models_by_training_state(session: Session) -> dict[TrainingState, int]:
    """How many models are in each training state; every state appears, zero included."""
    counts = dict.fromkeys(TrainingState, 0)
    rows = session.execute(select(TrainingRow.state, func.count()).group_by(TrainingRow.state))
    for state, count in rows:
        counts[TrainingState(state)] = int(count)
    return counts


def count_samples_stored(session: Session) -> int:
    """Training rows stored across every model (the sum kept beside each model's state)."""
    total = session.scalar(select(func.coalesce(func.sum(TrainingRow.sample_count), 0)))
    return int(total or 0)
