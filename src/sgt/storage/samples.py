"""Training samples, stored per upload as little-endian float32 matrices (never JSON text)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sgt.errors import ModelNotFound
from sgt.storage.tables import ModelRow, SampleBatchRow

FLOAT32_LE = np.dtype("<f4")


def append_samples(
    session: Session, *, model_id: int, inputs: np.ndarray, targets: np.ndarray, now: datetime
) -> None:
    """Add one batch of (n, in_size) inputs and (n, out_size) targets to the model's set.

    Raises ModelNotFound when the model is gone: on PostgreSQL a delete may commit between the
    caller's read of the model and this write; the lock waits for it and then sees it.
    """
    if not _lock_model(session, model_id):
        raise ModelNotFound("the model was deleted meanwhile")
    session.add(
        SampleBatchRow(
            model_id=model_id,
            row_count=len(inputs),
            inputs=np.ascontiguousarray(inputs, dtype=FLOAT32_LE).tobytes(),
            targets=np.ascontiguousarray(targets, dtype=FLOAT32_LE).tobytes(),
            created_at=now,
        )
    )


def _lock_model(session: Session, model_id: int) -> bool:
    """FOR KEY SHARE on the model row: a concurrent delete finishes first, nothing else waits."""
    found = session.execute(
        select(ModelRow.id)
        .where(ModelRow.id == model_id)
        .with_for_update(read=True, key_share=True)
    ).scalar_one_or_none()
    return found is not None


def load_samples(
    session: Session, *, model_id: int, in_size: int, out_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every sample of the model, in upload order, as float32 arrays."""
    batches = session.execute(
        select(SampleBatchRow.inputs, SampleBatchRow.targets)
        .where(SampleBatchRow.model_id == model_id)
        .order_by(SampleBatchRow.id)
    ).all()
    if not batches:
        return np.zeros((0, in_size), np.float32), np.zeros((0, out_size), np.float32)
    inputs = np.frombuffer(b"".join(b.inputs for b in batches), dtype=FLOAT32_LE)
    targets = np.frombuffer(b"".join(b.targets for b in batches), dtype=FLOAT32_LE)
    return (
        inputs.reshape(-1, in_size).astype(np.float32),
        targets.reshape(-1, out_size).astype(np.float32),
    )


def count_samples(session: Session, model_id: int) -> int:
    total = session.execute(
        select(func.coalesce(func.sum(SampleBatchRow.row_count), 0)).where(
            SampleBatchRow.model_id == model_id
        )
    ).scalar_one()
    return int(total)


def delete_samples(session: Session, model_id: int) -> None:
    """Remove every sample of the model."""
    session.execute(delete(SampleBatchRow).where(SampleBatchRow.model_id == model_id))
