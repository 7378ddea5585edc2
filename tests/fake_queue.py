"""An in-memory `TrainingQueue` for the worker's unit tests: the same public interface as
`sgt.storage.queue.TrainingQueue`, with the API's side (create, upload, clear, delete) as plain
methods of the shared `FakeTrainingStore`. `tests/unit/storage/test_training_queue.py` runs the
same cases on it and on the real queue, so the two cannot drift apart unnoticed.

It keeps the real queue's rules (see `sgt.storage.training`): claims oldest first, a lease judged
by the store's clock, every trainer write refused once the lease is lost. Thread-safe, because
the worker renews from a thread of its own.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState, append_loss
from sgt.storage.queue import Claim, Progress, StoredWeights, TrainingData, ValidationErrors


@dataclass
class FakeRow:
    """A model's training row, its samples and its checkpoint, all in one place."""

    spec: ModelSpec
    seed: int
    state: TrainingState = TrainingState.UNTRAINED
    data_version: int = 0
    sample_count: int = 0
    trained_sample_count: int = 0
    queued_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    steps: int = 0
    train_loss: float | None = None
    val_loss: float | None = None
    loss_history: list[list[float | None]] = field(default_factory=list)
    batches: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    checkpoint: StoredWeights | None = None
    checkpoint_version: int = 0
    errors: ValidationErrors | None = None  # of the checkpoint's weights


class FakeTrainingStore:
    """The rows every fake trainer shares; the test plays the API through its methods."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.rows: dict[int, FakeRow] = {}
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.lease_log: list[tuple[int, str]] = []  # (model id, trainer) of every claim
        self.trainers: dict[str, int | None] = {}  # the trainers' rows: name -> model trained

    def queue(self, worker_name: str, *, lease_seconds: float = 30.0) -> FakeTrainingQueue:
        return FakeTrainingQueue(self, worker_name=worker_name, lease_seconds=lease_seconds)

    def add_model(self, spec: ModelSpec, *, seed: int = 0) -> int:
        with self.lock:
            model_id = next(self._ids)
            self.rows[model_id] = FakeRow(spec=spec, seed=seed)
            return model_id

    def upload(self, model_id: int, inputs: np.ndarray, targets: np.ndarray) -> None:
        with self.lock:
            row = self.rows[model_id]
            row.batches.append((inputs.astype(np.float32), targets.astype(np.float32)))
            row.sample_count += len(inputs)
            row.data_version += 1
            if row.state != TrainingState.TRAINING:
                if row.state != TrainingState.QUEUED:
                    row.queued_at = self.clock()
                row.state = TrainingState.QUEUED
            elif row.queued_at is None:
                row.queued_at = self.clock()

    def clear(self, model_id: int) -> None:
        with self.lock:
            row = self.rows[model_id]
            row.batches.clear()
            row.sample_count = 0
            row.data_version += 1
            has_weights = row.checkpoint is not None
            row.state = TrainingState.CONVERGED if has_weights else TrainingState.UNTRAINED
            row.queued_at = row.lease_owner = row.lease_expires_at = None

    def delete(self, model_id: int) -> None:
        with self.lock:
            del self.rows[model_id]

    def row(self, model_id: int) -> FakeRow:
        with self.lock:
            return self.rows[model_id]


class FakeWorkSignal:
    """Nothing to listen to, as on SQLite: a wait ends on `wake()` or its timeout."""

    def __init__(self) -> None:
        self._woken = threading.Event()

    def listen(self) -> bool:
        return False

    def wait(self, timeout_seconds: float) -> None:
        self._woken.wait(max(0.0, timeout_seconds))
        self._woken.clear()

    def wake(self) -> None:
        self._woken.set()

    def close(self) -> None:
        pass


class FakeTrainingQueue:
    """One trainer's view of a `FakeTrainingStore`, as `TrainingQueue` is of the database."""

    has_notifications = False

    def __init__(self, store: FakeTrainingStore, *, worker_name: str, lease_seconds: float) -> None:
        self.store = store
        self.worker_name = worker_name
        self.lease_seconds = lease_seconds

    def work_signal(self) -> FakeWorkSignal:
        return FakeWorkSignal()

    def claim_next(self) -> Claim | None:
        with self.store.lock:
            now = self.store.clock()
            waiting = [
                (row.queued_at is not None, row.queued_at or 0.0, model_id)
                for model_id, row in self.store.rows.items()
                if _is_claimable(row, now)
            ]
            if not waiting:
                return None
            # Expired leases (no queued_at) first, then the longest-waiting, as the real queue.
            model_id = min(waiting)[2]
            row = self.store.rows[model_id]
            row.state = TrainingState.TRAINING
            row.lease_owner = self.worker_name
            row.lease_expires_at = now + self.lease_seconds
            row.queued_at = None
            self.store.lease_log.append((model_id, self.worker_name))
            return Claim(
                model_id=model_id,
                model_type=row.spec.model_type,
                in_size=row.spec.in_size,
                out_size=row.spec.out_size,
                seed=row.seed,
                data_version=row.data_version,
                steps=row.steps,
                lease_log_id=len(self.store.lease_log),
            )

    def load(self, claim: Claim) -> TrainingData | None:
        with self.store.lock:
            row = self.store.rows.get(claim.model_id)
            if row is None:
                return None
            spec = row.spec
            inputs = [batch[0] for batch in row.batches] or [np.zeros((0, spec.in_size))]
            targets = [batch[1] for batch in row.batches] or [np.zeros((0, spec.out_size))]
            return TrainingData(
                spec,
                np.concatenate(inputs).astype(np.float32),
                np.concatenate(targets).astype(np.float32),
                row.data_version,
                row.checkpoint,
            )

    def renew(self, claim: Claim, *, progress: Progress | None = None) -> int | None:
        with self.store.lock:
            row = self._held(claim)
            if row is None:
                return None
            row.lease_expires_at = self.store.clock() + self.lease_seconds
            if progress is not None:
                _record(row, progress)
            return row.data_version

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
        with self.store.lock:
            if self.renew(claim) is None:
                return False
            row = self.store.rows[claim.model_id]
            row.checkpoint = StoredWeights(model_type, weights)
            row.errors = errors
            row.checkpoint_version += 1
            row.trained_sample_count = trained_sample_count
            _record(row, progress)
            return True

    def finish(self, claim: Claim, *, trained_data_version: int, progress: Progress | None) -> bool:
        with self.store.lock:
            row = self._held(claim)
            if row is None:
                return False
            if progress is not None:
                _record(row, progress)
            if row.data_version == trained_data_version:
                row.state, row.queued_at = TrainingState.CONVERGED, None
            else:
                row.state = TrainingState.QUEUED
                row.queued_at = row.queued_at or self.store.clock()
            row.lease_owner = row.lease_expires_at = None
            return True

    def release(self, claim: Claim, *, retry_after_seconds: float = 0.0) -> None:
        with self.store.lock:
            row = self._held(claim)
            if row is None:
                return
            now = self.store.clock()
            row.state = TrainingState.QUEUED
            if retry_after_seconds > 0:
                row.queued_at = now + retry_after_seconds
            else:
                row.queued_at = row.queued_at or now
            row.lease_owner = row.lease_expires_at = None

    def seconds_until_claimable(self) -> float | None:
        with self.store.lock:
            now = self.store.clock()
            moments = [
                row.queued_at if row.queued_at is not None else now
                for row in self.store.rows.values()
                if row.state == TrainingState.QUEUED
            ] + [
                row.lease_expires_at
                for row in self.store.rows.values()
                if row.state == TrainingState.TRAINING and row.lease_expires_at is not None
            ]
            return None if not moments else max(0.0, min(moments) - now)

    def beat(self, model_id: int | None) -> None:
        with self.store.lock:
            self.store.trainers[self.worker_name] = model_id

    def leave(self) -> None:
        with self.store.lock:
            self.store.trainers.pop(self.worker_name, None)

    def _held(self, claim: Claim) -> FakeRow | None:
        row = self.store.rows.get(claim.model_id)
        is_held = row is not None and row.state == TrainingState.TRAINING
        return row if is_held and row.lease_owner == self.worker_name else None


def _is_claimable(row: FakeRow, now: float) -> bool:
    if row.state == TrainingState.QUEUED:
        return row.queued_at is None or row.queued_at <= now
    expires = row.lease_expires_at
    return row.state == TrainingState.TRAINING and expires is not None and expires < now


def _record(row: FakeRow, progress: Progress) -> None:
    row.steps, row.train_loss, row.val_loss = progress.steps, progress.train_loss, progress.val_loss
    if progress.train_loss is not None:
        row.loss_history = append_loss(
            row.loss_history,
            steps=progress.steps,
            train_loss=progress.train_loss,
            val_loss=progress.val_loss,
        )
