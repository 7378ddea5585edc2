"""Checkpoints: the current weights of each model, one row replaced in one transaction.

A checkpoint is only ever replaced inside a transaction that also checks the writer's right to
write it (see `TrainingQueue.save_checkpoint`), so a crash at any moment leaves the previous row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sgt.storage.tables import CheckpointRow


def load_checkpoint(session: Session, model_id: int) -> CheckpointRow | None:
    """The model's current checkpoint, or None before the first one."""
    return session.get(CheckpointRow, model_id)


def checkpoint_version(session: Session, model_id: int) -> int | None:
    return session.execute(
        select(CheckpointRow.version).where(CheckpointRow.model_id == model_id)
    ).scalar_one_or_none()


def write_checkpoint(
    session: Session,
    *,
    model_id: int,
    model_type: str,
    weights: bytes,
    trained_sample_count: int,
    now: datetime,
) -> int:
    """Replace the model's checkpoint; returns its new version."""
    row = session.get(CheckpointRow, model_id, with_for_update=True)
    if row is None:
        row = CheckpointRow(model_id=model_id, version=0)
        session.add(row)
    row.version += 1
    row.model_type = model_type
    row.weights = weights
    row.trained_sample_count = trained_sample_count
    row.created_at = now
    session.flush()
    return row.version
