"""Model versions: the last K converged checkpoints of each model, listed and rolled back to.

Contract:
- A version is written only by a trainer's `finish` that leaves the model `converged`, in that
  transaction: a copy of the checkpoint it converged on, with the database clock's time, the
  sample count those weights saw and the run's losses. Versions count 1, 2, ... per model; the
  same transaction prunes all but the newest K. A finish whose checkpoint already is a version
  (the run saved nothing new) writes none.
- The served version is the one whose weights are in the checkpoint row now: each version
  remembers the `checkpoints.version` it was last put there under. While a run writes newer
  checkpoints, no version is served.
- A rollback copies a version's weights into the checkpoint row under a new checkpoint version
  (so every API process's cache key changes) and settles the training row as `converged` on
  them: a run in progress loses its lease (its next write is refused, as after a clear) and
  waiting data waits for the next upload, which trains from the rolled-back weights. So a
  rollback always wins over a concurrent finish: committed first, the finish finds no lease;
  committed second, it replaces what the finish served.
- Deleting a model deletes its versions (ON DELETE CASCADE). A clone gets the source's served
  version as its version 1, or its current checkpoint when none is served.

Locks, in the order a delete and a trainer take them (see `sgt.storage.training`): the model
row (FOR KEY SHARE), the training row, then the checkpoint and version rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sgt.domain.training import TrainingState
from sgt.storage.checkpoints import load_checkpoint, write_checkpoint
from sgt.storage.tables import CheckpointRow, ModelRow, ModelVersionRow, TrainingRow


@dataclass(frozen=True)
class VersionInfo:
    """One kept version as listed: everything but its weights."""

    version: int
    created_at: datetime
    sample_count: int
    val_loss: float | None
    is_served: bool


def record_converged_version(
    session: Session, *, model_id: int, now: datetime, keep: int
) -> int | None:
    """Keep the model's checkpoint as a new version and prune all but the newest `keep`;
    returns the new version, or None when there is no checkpoint or it already is a version.
    Call it in the transaction that marks the model converged, after its lease was checked."""
    checkpoint = load_checkpoint(session, model_id)
    if checkpoint is None or _version_holding(session, checkpoint) is not None:
        return None
    training = session.get_one(TrainingRow, model_id)
    newest = session.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model_id)
    )
    version = (newest or 0) + 1
    session.add(
        ModelVersionRow(
            model_id=model_id,
            version=version,
            model_type=checkpoint.model_type,
            weights=checkpoint.weights,
            sample_count=checkpoint.trained_sample_count,
            train_loss=training.train_loss,
            val_loss=training.val_loss,
            created_at=now,
            checkpoint_version=checkpoint.version,
            validation_errors=training.validation_errors,
        )
    )
    session.execute(
        delete(ModelVersionRow).where(
            ModelVersionRow.model_id == model_id, ModelVersionRow.version <= version - keep
        )
    )
    session.flush()
    return version


def list_versions(session: Session, model_id: int) -> list[VersionInfo]:
    """The model's kept versions, newest first, the served one marked."""
    served = session.scalar(select(CheckpointRow.version).where(CheckpointRow.model_id == model_id))
    rows = session.execute(
        select(
            ModelVersionRow.version,
            ModelVersionRow.created_at,
            ModelVersionRow.sample_count,
            ModelVersionRow.val_loss,
            ModelVersionRow.checkpoint_version,
        )
        .where(ModelVersionRow.model_id == model_id)
        .order_by(ModelVersionRow.version.desc())
    ).all()
    return [
        VersionInfo(
            version=row.version,
            created_at=row.created_at,
            sample_count=row.sample_count,
            val_loss=row.val_loss,
            is_served=row.checkpoint_version == served,
        )
        for row in rows
    ]


def roll_back_to_version(session: Session, *, model_id: int, version: int, now: datetime) -> bool:
    """Serve `version` from now on and settle the model as converged on it (see the module
    contract); False, with nothing written, when the model has no such version."""
    if not _lock_model(session, model_id):
        return False
    training = session.execute(
        select(TrainingRow).where(TrainingRow.model_id == model_id).with_for_update()
    ).scalar_one()
    kept = session.get(ModelVersionRow, (model_id, version), with_for_update=True)
    if kept is None:
        return False
    kept.checkpoint_version = write_checkpoint(
        session,
        model_id=model_id,
        model_type=kept.model_type,
        weights=kept.weights,
        trained_sample_count=kept.sample_count,
        now=now,
    )
    training.state = TrainingState.CONVERGED
    training.queued_at = None
    training.lease_owner = None
    training.lease_expires_at = None
    training.trained_sample_count = kept.sample_count
    training.train_loss = kept.train_loss
    training.val_loss = kept.val_loss
    training.validation_errors = kept.validation_errors
    training.updated_at = now
    session.flush()
    return True


def copy_served_version(
    session: Session, *, source_id: int, clone_id: int, clone_checkpoint_version: int, now: datetime
) -> None:
    """Give a clone, whose checkpoint was just copied from the source's, its version 1: the
    source's served version, or that checkpoint itself when no version is served."""
    checkpoint = load_checkpoint(session, source_id)
    if checkpoint is None:
        return
    served = _version_holding(session, checkpoint)
    session.add(
        ModelVersionRow(
            model_id=clone_id,
            version=1,
            model_type=checkpoint.model_type,
            weights=checkpoint.weights,
            sample_count=checkpoint.trained_sample_count,
            train_loss=served.train_loss if served else None,
            # An unfinished run's checkpoint has no validation error of its own.
            val_loss=served.val_loss if served else None,
            created_at=now,
            checkpoint_version=clone_checkpoint_version,
            validation_errors=served.validation_errors if served else None,
        )
    )
    session.flush()


def _version_holding(session: Session, checkpoint: CheckpointRow) -> ModelVersionRow | None:
    return session.execute(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == checkpoint.model_id,
            ModelVersionRow.checkpoint_version == checkpoint.version,
        )
    ).scalar_one_or_none()


def _lock_model(session: Session, model_id: int) -> bool:
    # As a trainer's write does: a delete in progress makes us wait, then we find no row.
    return (
        session.execute(
            select(ModelRow.id)
            .where(ModelRow.id == model_id)
            .with_for_update(read=True, key_share=True)
        ).scalar_one_or_none()
        is not None
    )
