"""The training queue: where the API (upload, clear, delete) and the trainers (claim, renew,
checkpoint, finish) meet. Nothing else is shared between them.

Contract (the trainer's side of it is `TrainingQueue` in `sgt.storage.queue`):
- The API creates the row (`untrained`, or `converged` for a clone with weights) and is the only
  writer of the data: an upload bumps `data_version` and `sample_count` and moves the row to
  `queued`, except a `training` row, which stays leased and only records `queued_at`, so the new
  data waits its turn once the run ends. A clear bumps `data_version`, sets `untrained` (or
  `converged` when weights exist) and drops any lease; a delete removes the row.
- A trainer moves a row to `training` by claiming it, and only the lease holder (`state` is
  `training` and `lease_owner` its name) moves it on: to `converged` (finished, no new data), or
  back to `queued` (finished with newer data, or released). Only the holder writes the
  checkpoint and progress. Every trainer write re-checks this inside its own transaction, so a
  deleted or cleared model, or one another trainer took over, is never written back.
- The validation errors (`validation_errors`) belong to the served weights: every checkpoint
  replaces them in the transaction that replaces the weights (NULL when the new weights have
  no validation rows), and nothing else writes them; an upload or a clear leaves them, as it
  leaves the weights they describe.
- Nothing happens to a row when its lease expires: no process watches for it. A `training` row
  whose `lease_expires_at` is past (by the database clock) is merely claimable again, like a
  `queued` one, and until another trainer claims it the old holder's writes still succeed. The
  claim that takes it over changes `lease_owner` in the transaction that judged the expiry; from
  then on the old holder's next renewal or checkpoint finds the row not its own and its run ends.
  Idle trainers learn of an expiry by timing their wait to it (`seconds_until_claimable`), never
  by a notification.
- Claims take the oldest waiting row first (`queued_at`; expired leases first of all), so no
  model waits behind an unbounded queue of others. A queued row whose `queued_at` lies in the
  future (a run that failed, put back with a back-off) is not claimable before then, so a broken
  model never spins a trainer.
- Every transaction that makes a row claimable at once announces it (`announce_work`), so idle
  trainers on PostgreSQL wake at once; a back-off's end, like a lease expiry, is not announced.

Locking on PostgreSQL: a claim locks the training row and its model row with SKIP LOCKED in one
statement, so it never waits; every later trainer write locks the model row (FOR KEY SHARE)
before the training row, the order in which deleting a model takes them, so a delete and a
trainer never deadlock. On SQLite BEGIN IMMEDIATE serialises writers and the locks are no-ops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from sgt.domain.training import TrainingState, TrainingStatus, ValidationErrors, append_loss
from sgt.errors import ModelNotFound
from sgt.storage.checkpoints import write_checkpoint
from sgt.storage.engine import database_now
from sgt.storage.notify import announce_work
from sgt.storage.tables import LeaseLogRow, ModelRow, TrainingRow


@dataclass(frozen=True)
class Claim:
    """A model a trainer now holds: what it needs to start a run."""

    model_id: int
    model_type: str
    in_size: int
    out_size: int
    seed: int
    data_version: int
    steps: int
    lease_log_id: int


@dataclass(frozen=True)
class Progress:
    """Metrics a trainer reports with a heartbeat or a checkpoint."""

    steps: int
    train_loss: float | None
    val_loss: float | None


def add_training_row(
    session: Session, *, model_id: int, now: datetime, has_weights: bool = False
) -> None:
    state = TrainingState.CONVERGED if has_weights else TrainingState.UNTRAINED
    session.add(
        TrainingRow(
            model_id=model_id,
            state=state,
            data_version=0,
            sample_count=0,
            trained_sample_count=0,
            steps=0,
            loss_history="[]",
            updated_at=now,
        )
    )


def queue_after_upload(session: Session, *, model_id: int, added: int, now: datetime) -> None:
    """Record `added` new samples and make sure the model is (or stays) scheduled."""
    row = _locked_row(session, model_id)
    row.sample_count += added
    row.data_version += 1
    row.updated_at = now
    if row.state != TrainingState.TRAINING:
        if row.state != TrainingState.QUEUED:
            row.queued_at = now
        row.state = TrainingState.QUEUED
        announce_work(session)
    elif row.queued_at is None:
        row.queued_at = now


def clear_samples_state(
    session: Session, *, model_id: int, has_weights: bool, now: datetime
) -> None:
    """After the samples are removed: nothing to train, the weights stay."""
    row = _locked_row(session, model_id)
    row.sample_count = 0
    row.data_version += 1
    row.state = TrainingState.CONVERGED if has_weights else TrainingState.UNTRAINED
    row.queued_at = None
    row.lease_owner = None
    row.lease_expires_at = None
    row.updated_at = now


def claimable(now: datetime) -> ColumnElement[bool]:
    """Rows a trainer may claim at `now`: queued (and not backing off), or leased and expired."""
    return or_(
        (TrainingRow.state == TrainingState.QUEUED)
        & (TrainingRow.queued_at.is_(None) | (TrainingRow.queued_at <= now)),
        (TrainingRow.state == TrainingState.TRAINING) & (TrainingRow.lease_expires_at < now),
    )


def claim_model_to_train(
    session: Session, *, worker: str, now: datetime, lease_seconds: float
) -> Claim | None:
    """Take the longest-waiting model that is queued or whose trainer's lease expired.

    Expired leases sort first (their `queued_at` is NULL): their model has waited longest.
    """
    waiting = (
        select(TrainingRow.model_id)
        .join(ModelRow, ModelRow.id == TrainingRow.model_id)
        .where(claimable(now))
        .order_by(TrainingRow.queued_at.nulls_first(), TrainingRow.model_id)
        .limit(1)
        # NO KEY UPDATE excludes other claimers and a delete, but not uploads' FK checks.
        .with_for_update(of=[TrainingRow, ModelRow], skip_locked=True, key_share=True)
    )
    model_id = session.execute(waiting).scalar_one_or_none()
    if model_id is None:
        return None
    # Read the clock after the lock: a release committed by the previous holder happened before.
    claimed_at = database_now(session)
    row = session.get_one(TrainingRow, model_id)
    model = session.get_one(ModelRow, model_id)
    row.state = TrainingState.TRAINING
    row.lease_owner = worker
    row.lease_expires_at = claimed_at + timedelta(seconds=lease_seconds)
    row.queued_at = None
    row.updated_at = claimed_at
    log_row = LeaseLogRow(
        model_id=model_id,
        worker=worker,
        claimed_at=claimed_at,
        expires_at=row.lease_expires_at,
    )
    session.add(log_row)
    session.flush()
    return Claim(
        model_id=model_id,
        model_type=model.model_type,
        in_size=model.in_size,
        out_size=model.out_size,
        seed=model.seed,
        data_version=row.data_version,
        steps=row.steps,
        lease_log_id=log_row.id,
    )


def data_version_of(session: Session, model_id: int) -> int | None:
    """The model's current `data_version`; None once the model is deleted."""
    return session.execute(
        select(TrainingRow.data_version).where(TrainingRow.model_id == model_id)
    ).scalar_one_or_none()


def seconds_until_claimable(session: Session, *, now: datetime) -> float | None:
    """How long until some row becomes claimable without anyone announcing it (a lease expires,
    a back-off ends): 0 when one is claimable now, None when nothing is queued or leased."""
    moments = session.execute(
        select(
            func.min(func.coalesce(TrainingRow.queued_at, now)).filter(
                TrainingRow.state == TrainingState.QUEUED
            ),
            func.min(TrainingRow.lease_expires_at).filter(
                TrainingRow.state == TrainingState.TRAINING
            ),
        )
    ).one()
    pending = [moment for moment in moments if moment is not None]
    if not pending:
        return None
    earliest: datetime = min(pending)
    return max(0.0, (earliest - now).total_seconds())


def renew_lease(
    session: Session,
    *,
    claim: Claim,
    worker: str,
    now: datetime,
    lease_seconds: float,
    progress: Progress | None = None,
) -> int | None:
    """Extend the lease; returns the model's current data_version, or None if the lease is lost
    (model deleted, or the lease expired and another trainer took it)."""
    row = _held_row(session, claim=claim, worker=worker)
    if row is None:
        return None
    row.lease_expires_at = now + timedelta(seconds=lease_seconds)
    session.execute(
        update(LeaseLogRow)
        .where(LeaseLogRow.id == claim.lease_log_id)
        .values(expires_at=row.lease_expires_at)
    )
    if progress is not None:
        _record_progress(row, progress, now)
    return row.data_version


def save_checkpoint(
    session: Session,
    *,
    claim: Claim,
    worker: str,
    now: datetime,
    model_type: str,
    weights: bytes,
    trained_sample_count: int,
    progress: Progress,
    errors: ValidationErrors | None = None,
) -> bool:
    """Write new weights and their validation `errors` (None: no validation rows) if the lease
    is still held; False (and nothing written) otherwise."""
    row = _held_row(session, claim=claim, worker=worker)
    if row is None:
        return False
    write_checkpoint(
        session,
        model_id=claim.model_id,
        model_type=model_type,
        weights=weights,
        trained_sample_count=trained_sample_count,
        now=now,
    )
    row.trained_sample_count = trained_sample_count
    row.validation_errors = None if errors is None else orjson.dumps(errors).decode()
    _record_progress(row, progress, now)
    return True


def finish_run(
    session: Session,
    *,
    claim: Claim,
    worker: str,
    now: datetime,
    trained_data_version: int,
    progress: Progress | None,
) -> bool:
    """End a run: converged if no data arrived since it started, else back to the queue."""
    row = _held_row(session, claim=claim, worker=worker)
    if row is None:
        return False
    if progress is not None:
        _record_progress(row, progress, now)
    if row.data_version == trained_data_version:
        row.state = TrainingState.CONVERGED
        row.queued_at = None
    else:
        # New data arrived during the run: queued since it arrived, behind older waiters.
        row.state = TrainingState.QUEUED
        row.queued_at = row.queued_at or now
        announce_work(session)
    _drop_lease(session, row, claim, now)
    return True


def release_model(
    session: Session,
    *,
    claim: Claim,
    worker: str,
    now: datetime,
    retry_after_seconds: float = 0.0,
) -> None:
    """Give a held model back to the queue: a trainer shutting down (retry at once), or a run
    that failed (retry after `retry_after_seconds`, so a broken model never spins a trainer)."""
    row = _held_row(session, claim=claim, worker=worker)
    if row is not None:
        row.state = TrainingState.QUEUED
        if retry_after_seconds > 0:
            row.queued_at = now + timedelta(seconds=retry_after_seconds)
        else:
            row.queued_at = row.queued_at or now
            announce_work(session)
        _drop_lease(session, row, claim, now)


def read_status(session: Session, model_id: int) -> TrainingStatus:
    """The model's training status, with the served weights' validation errors."""
    row = session.get_one(TrainingRow, model_id)
    errors = None if row.validation_errors is None else orjson.loads(row.validation_errors)
    return TrainingStatus(
        state=TrainingState(row.state),
        sample_count=row.sample_count,
        trained_sample_count=row.trained_sample_count,
        steps=row.steps,
        train_loss=row.train_loss,
        val_loss=row.val_loss,
        loss_history=orjson.loads(row.loss_history),
        updated_at=row.updated_at,
        val_rows=None if errors is None else errors["rows"],
        val_mae=None if errors is None else errors["mae"],
        val_p95_abs_error=None if errors is None else errors["p95_abs_error"],
        val_max_abs_error=None if errors is None else errors["max_abs_error"],
        val_mae_per_output=None if errors is None else errors["mae_per_output"],
    )


def _locked_row(session: Session, model_id: int) -> TrainingRow:
    row = session.execute(
        select(TrainingRow).where(TrainingRow.model_id == model_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:  # PostgreSQL: deleted by a transaction that committed after our first read
        raise ModelNotFound("the model was deleted meanwhile")
    return row


def _held_row(session: Session, *, claim: Claim, worker: str) -> TrainingRow | None:
    # The model row first, as a delete takes it: a delete in progress makes us wait, then we
    # find no row and the lease is lost.
    model_id = session.execute(
        select(ModelRow.id)
        .where(ModelRow.id == claim.model_id)
        .with_for_update(read=True, key_share=True)
    ).scalar_one_or_none()
    if model_id is None:
        return None
    return session.execute(
        select(TrainingRow)
        .where(
            TrainingRow.model_id == claim.model_id,
            TrainingRow.state == TrainingState.TRAINING,
            # An expired lease still counts until another trainer claims the row: the claim
            # changes lease_owner in the same transaction that judges the expiry.
            TrainingRow.lease_owner == worker,
        )
        .with_for_update()
    ).scalar_one_or_none()


def _record_progress(row: TrainingRow, progress: Progress, now: datetime) -> None:
    row.steps = progress.steps
    row.train_loss = progress.train_loss
    row.val_loss = progress.val_loss
    if progress.train_loss is not None:
        history = append_loss(
            orjson.loads(row.loss_history),
            steps=progress.steps,
            train_loss=progress.train_loss,
            val_loss=progress.val_loss,
        )
        row.loss_history = orjson.dumps(history).decode()
    row.updated_at = now


def _drop_lease(session: Session, row: TrainingRow, claim: Claim, now: datetime) -> None:
    row.lease_owner = None
    row.lease_expires_at = None
    row.updated_at = now
    session.execute(
        update(LeaseLogRow).where(LeaseLogRow.id == claim.lease_log_id).values(released_at=now)
    )
