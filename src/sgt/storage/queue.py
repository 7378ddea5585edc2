"""`TrainingQueue`: the one object a trainer asks for work and reports to. It owns every
transaction a trainer opens and reads the database clock for it; the statements themselves are the
intent-named functions of `sgt.storage.training`. It must not import torch or the model types: a
checkpoint leaves here as bytes and the trainer decodes it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import numpy as np

from sgt.config import DEFAULT_KEEP_VERSIONS
from sgt.domain.models import ModelSpec
from sgt.domain.training import ValidationErrors
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import samples as sample_store
from sgt.storage import trainers as trainer_rows
from sgt.storage import training as rows
from sgt.storage import versions as version_store
from sgt.storage.engine import Database
from sgt.storage.notify import WorkSignal
from sgt.storage.training import Claim, Progress

__all__ = [
    "Claim",
    "Progress",
    "StoredWeights",
    "TrainingData",
    "TrainingQueue",
    "ValidationErrors",
]

# A trainer row silent this long belongs to a trainer that was killed: any beat deletes it.
PRUNE_SILENT_TRAINERS_SECONDS = 3600.0


@dataclass(frozen=True)
class StoredWeights:
    """A model's checkpoint as stored: which type wrote it, and that type's bytes."""

    model_type: str
    weights: bytes


@dataclass(frozen=True)
class TrainingData:
    """What a claimed model is trained on, all read as of one moment: its samples, the
    `data_version` they are (report it to `finish`), and the weights to start from."""

    spec: ModelSpec
    inputs: np.ndarray
    targets: np.ndarray
    data_version: int
    start: StoredWeights | None


class TrainingQueue:
    """The training rows as one trainer (`worker_name`, leases of `lease_seconds`) sees them.

    Contract (the rows' side is at the top of `sgt.storage.training`):

    - `claim_next` hands out each waiting model to one trainer at a time, oldest first; a model
      whose lease expired (by the database clock) is waiting again. The claim opens a lease of
      `lease_seconds` and a `lease_log` entry.
    - Every later method re-checks, in its own transaction, that this trainer still holds the
      claim (the row is `training` and leased to `worker_name`). When it does not (the model was
      deleted or cleared, or another trainer claimed it after the lease expired) the method writes
      nothing and says so: `renew` returns None, `save_checkpoint` and `finish` return False,
      `release` does nothing. A lease that expired but was not yet claimed by anyone still counts
      as held: nothing notices an expiry until a claim takes the row over.
    - `load` reads samples, `data_version` and the checkpoint in one snapshot (REPEATABLE READ on
      PostgreSQL), so they describe the same data; an upload that commits later bumps
      `data_version`, which `renew` reports and which makes `finish` queue the model again.
    - Every other read sees what committed before it began (READ COMMITTED); a method that locks
      a row waits for a concurrent delete or claim to commit and then sees its result.
    - `beat` records that the trainer is alive (and on which model) in its `trainers` row;
      `leave` deletes the row when it stops cleanly.
    - `save_checkpoint` stores the weights' validation errors with them: the status shows the
      figures of exactly the weights `run_sgt_model` serves, null after a checkpoint without any.
    - Storage failures raise `StorageError` after rolling the transaction back;
      `StorageUnavailable` (a subclass) when the database is away or busy for now.
    """

    def __init__(
        self,
        db: Database,
        *,
        worker_name: str,
        lease_seconds: float,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        restarts: int = 0,
    ) -> None:
        self._db = db
        self.worker_name = worker_name
        self.lease_seconds = lease_seconds
        self.keep_versions = keep_versions
        self._identity = trainer_rows.TrainerIdentity(
            worker_name, socket.gethostname(), os.getpid(), restarts
        )

    @property
    def has_notifications(self) -> bool:
        """Whether new work is announced (PostgreSQL NOTIFY), or must be polled for (SQLite)."""
        return not self._db.is_sqlite

    def work_signal(self) -> WorkSignal:
        """What an idle trainer waits on until work may be waiting."""
        return WorkSignal(self._db.url)

    def claim_next(self) -> Claim | None:
        """Take the longest-waiting claimable model; None when nothing is waiting."""
        with self._db.write() as session:
            return rows.claim_model_to_train(
                session,
                worker=self.worker_name,
                now=self._db.now(session),
                lease_seconds=self.lease_seconds,
            )

    def load(self, claim: Claim) -> TrainingData | None:
        """The claimed model's samples and starting weights; None if the model is gone."""
        spec = ModelSpec(claim.model_type, claim.in_size, claim.out_size)
        with self._db.snapshot() as session:
            data_version = rows.data_version_of(session, claim.model_id)
            if data_version is None:
                return None
            inputs, targets = sample_store.load_samples(
                session, model_id=claim.model_id, in_size=spec.in_size, out_size=spec.out_size
            )
            checkpoint = checkpoint_store.load_checkpoint(session, claim.model_id)
            start = (
                None
                if checkpoint is None
                else StoredWeights(checkpoint.model_type, checkpoint.weights)
            )
        return TrainingData(spec, inputs, targets, data_version, start)

    def renew(self, claim: Claim, *, progress: Progress | None = None) -> int | None:
        """Extend the lease by `lease_seconds` from now, recording `progress` if given; returns
        the model's current `data_version`, or None when the lease is lost."""
        with self._db.write() as session:
            return rows.renew_lease(
                session,
                claim=claim,
                worker=self.worker_name,
                now=self._db.now(session),
                lease_seconds=self.lease_seconds,
                progress=progress,
            )

    def save_checkpoint(
        self,
        claim: Claim,
        *,
        model_type: str,
        weights: bytes,
        trained_sample_count: int,
        progress: Progress,
        errors: ValidationErrors | None = None,
    ) -> bool:
        """Replace the checkpoint, its validation `errors` (None: the weights have no validation
        rows) and the lease in one transaction; False (nothing written) when the lease is
        lost."""
        with self._db.write() as session:
            now = self._db.now(session)
            held = rows.renew_lease(
                session,
                claim=claim,
                worker=self.worker_name,
                now=now,
                lease_seconds=self.lease_seconds,
            )
            return held is not None and rows.save_checkpoint(
                session,
                claim=claim,
                worker=self.worker_name,
                now=now,
                model_type=model_type,
                weights=weights,
                trained_sample_count=trained_sample_count,
                progress=progress,
                errors=errors,
            )

    def finish(self, claim: Claim, *, trained_data_version: int, progress: Progress | None) -> bool:
        """End the run and the lease: `converged` if the data is still `trained_data_version`,
        else queued again. A converged run's checkpoint becomes the model's newest version
        (`sgt.storage.versions`), in the same transaction. False when the lease was already
        lost."""
        with self._db.write() as session:
            now = self._db.now(session)
            finished = rows.finish_run(
                session,
                claim=claim,
                worker=self.worker_name,
                now=now,
                trained_data_version=trained_data_version,
                progress=progress,
            )
            if finished and trained_data_version == rows.data_version_of(session, claim.model_id):
                version_store.record_converged_version(
                    session, model_id=claim.model_id, now=now, keep=self.keep_versions
                )
            return finished

    def release(self, claim: Claim, *, retry_after_seconds: float = 0.0) -> None:
        """Give the model back to the queue, claimable again at once (a shutdown) or after
        `retry_after_seconds` (a failed run, so a broken model never spins a trainer)."""
        with self._db.write() as session:
            rows.release_model(
                session,
                claim=claim,
                worker=self.worker_name,
                now=self._db.now(session),
                retry_after_seconds=retry_after_seconds,
            )

    def seconds_until_claimable(self) -> float | None:
        """How long until a model becomes claimable unannounced (a lease expires, a back-off
        ends): 0 when one is claimable now, None when nothing is queued or leased."""
        with self._db.read() as session:
            return rows.seconds_until_claimable(session, now=self._db.now(session))

    def beat(self, model_id: int | None) -> None:
        """Record that this trainer is alive, training `model_id` (None: idle); drop the rows of
        trainers silent for `PRUNE_SILENT_TRAINERS_SECONDS`."""
        with self._db.write() as session:
            now = self._db.now(session)
            trainer_rows.record_beat(session, trainer=self._identity, model_id=model_id, now=now)
            trainer_rows.prune_trainers(
                session, now=now, silent_seconds=PRUNE_SILENT_TRAINERS_SECONDS
            )

    def leave(self) -> None:
        """Delete this trainer's row: it stopped cleanly."""
        with self._db.write() as session:
            trainer_rows.remove_trainer(session, self.worker_name)
