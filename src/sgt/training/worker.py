"""The trainer's loop: claim a model, train it from its latest checkpoint, checkpoint, release.

Several workers (threads, processes, machines) share one database; they meet the API only at the
training rows (`sgt.storage.training`). A worker renews its lease on a timer and stops a run as
soon as a renewal finds the lease gone (the model was deleted, or taken over after expiry).

An idle worker sleeps until work may be waiting: a NOTIFY from an upload (PostgreSQL), the moment
the next lease expires or back-off ends, or at the latest `idle_seconds` (a bounded poll, the only
wake-up on SQLite). It runs no query and uses no CPU in between.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass

import numpy as np

from sgt.config import Settings
from sgt.errors import StorageError
from sgt.ml.base import (
    ModelShape,
    ModelType,
    Predictor,
    TrainingProgress,
    TrainingRun,
)
from sgt.ml.registry import get_model_type
from sgt.ml.runtime import configure_torch
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import samples as sample_store
from sgt.storage import training as queue
from sgt.storage.engine import Database
from sgt.storage.notify import WorkSignal
from sgt.storage.tables import TrainingRow
from sgt.training.trainer import Heartbeat, Outcome, RunResult, drive_run

log = logging.getLogger("sgt.worker")

# A run that raised is retried after this long (or the lease time, if longer), not at once.
FAILED_RUN_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class WorkerTimings:
    lease_seconds: float
    heartbeat_seconds: float
    checkpoint_seconds: float
    poll_seconds: float
    max_train_seconds: float

    @property
    def idle_seconds(self) -> float:
        """Longest sleep of an idle worker: `poll_seconds` on SQLite. On PostgreSQL NOTIFY and
        lease expiries wake it; this bound only guards against a lost notification."""
        return max(self.poll_seconds, self.lease_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerTimings:
        """The configured timings; a heartbeat too slow for the lease is shortened (with a
        warning) to a third of it, so one late renewal never loses the lease."""
        heartbeat = settings.heartbeat_seconds
        if heartbeat > settings.lease_seconds / 3:
            heartbeat = settings.lease_seconds / 3
            log.warning(
                "heartbeat of %.3g s is too slow for a lease of %.3g s; renewing every %.3g s",
                settings.heartbeat_seconds,
                settings.lease_seconds,
                heartbeat,
            )
        return cls(
            settings.lease_seconds,
            heartbeat,
            settings.checkpoint_seconds,
            settings.poll_seconds,
            settings.max_train_seconds,
        )


class Worker:
    """One trainer: trains one model at a time until `stop()`."""

    def __init__(
        self, db: Database, *, timings: WorkerTimings, device: str = "cpu", name: str | None = None
    ) -> None:
        self.db = db
        self.timings = timings
        self.device = device
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._work = WorkSignal(db.url)

    def stop(self) -> None:
        """Ask the loop to end; a model in training is checkpointed and released. Safe to call
        from a signal handler or another thread."""
        self._stopping.set()
        self._work.wake()

    def run_forever(self) -> None:
        is_listening = self._work.listen()
        log.info(
            "trainer %s started (device %s, %s)",
            self.name,
            self.device,
            "LISTEN/NOTIFY" if is_listening else f"polling every {self.timings.poll_seconds} s",
        )
        try:
            while not self._stopping.is_set():
                if not self.train_next() and not self._stopping.is_set():
                    self._work.wait(self._idle_wait_seconds())
        finally:
            self._work.close()
        log.info("trainer %s stopped", self.name)

    def _idle_wait_seconds(self) -> float:
        """Until the next lease expiry or back-off end, within the polling bound."""
        bound = self.timings.poll_seconds if self.db.is_sqlite else self.timings.idle_seconds
        with self.db.read() as session:
            until = queue.seconds_until_claimable(session, now=self.db.now(session))
        # A hair past the expiry, so the claim's `expires < now` holds when we look.
        return bound if until is None else min(bound, until + 0.01)

    def train_next(self) -> bool:
        """Claim and train one model; False when nothing was waiting."""
        with self.db.write() as session:
            claim = queue.claim_model_to_train(
                session,
                worker=self.name,
                now=self.db.now(session),
                lease_seconds=self.timings.lease_seconds,
            )
        if claim is None:
            return False
        log.info("training model %s (%s)", claim.model_id, claim.model_type)
        try:
            with _LeaseKeeper(self, claim) as keeper:
                self._train(claim, keeper)
        except Exception:
            retry = max(FAILED_RUN_RETRY_SECONDS, self.timings.lease_seconds)
            log.exception("training model %s failed; retrying it in %.0f s", claim.model_id, retry)
            self._release(claim, retry_after_seconds=retry)
        return True

    def _train(self, claim: queue.Claim, keeper: _LeaseKeeper) -> None:
        loaded = self._load(claim)
        if loaded is None:
            return
        model_type, inputs, targets, start, data_version = loaded
        if len(inputs) == 0:
            self._finish(claim, data_version, None)
            return
        run = model_type.start_training(
            ModelShape(claim.in_size, claim.out_size),
            inputs,
            targets,
            start=start,
            seed=claim.seed,
            device=self.device,
        )
        hooks = _LeaseHooks(self, claim, model_type.name, len(inputs), data_version, keeper)
        result = drive_run(
            run,
            hooks,
            heartbeat_seconds=self.timings.heartbeat_seconds,
            checkpoint_seconds=self.timings.checkpoint_seconds,
            max_seconds=self.timings.max_train_seconds,
        )
        self._conclude(claim, result, hooks, run)

    def _conclude(
        self, claim: queue.Claim, result: RunResult, hooks: _LeaseHooks, run: TrainingRun
    ) -> None:
        if result.outcome is Outcome.LEASE_LOST:
            log.info(
                "model %s: lease lost (deleted or taken over); nothing written", claim.model_id
            )
            return
        if result.has_unsaved_improvement and result.progress is not None:
            if not hooks.checkpoint(run.best(), result.progress):
                return
        if result.outcome is Outcome.STOPPED:
            self._release(claim)
            return
        totals = None if result.progress is None else hooks.totals(result.progress)
        self._finish(claim, hooks.data_version, totals)
        log.info(
            "model %s: %s after %s steps",
            claim.model_id,
            result.outcome.value,
            result.progress.steps if result.progress else 0,
        )

    def _load(
        self, claim: queue.Claim
    ) -> tuple[ModelType, np.ndarray, np.ndarray, Predictor | None, int] | None:
        with self.db.snapshot() as session:
            row = session.get(TrainingRow, claim.model_id)
            if row is None:
                return None
            # Samples and data_version read in one transaction: they describe the same data.
            data_version = row.data_version
            inputs, targets = sample_store.load_samples(
                session, model_id=claim.model_id, in_size=claim.in_size, out_size=claim.out_size
            )
            checkpoint = checkpoint_store.load_checkpoint(session, claim.model_id)
            stored = None if checkpoint is None else (checkpoint.model_type, checkpoint.weights)
        model_type = get_model_type(claim.model_type)
        start = (
            None
            if stored is None
            else get_model_type(stored[0]).load(stored[1], device=self.device)
        )
        return model_type, inputs, targets, start, data_version

    def _finish(
        self, claim: queue.Claim, data_version: int, progress: queue.Progress | None
    ) -> None:
        with self.db.write() as session:
            queue.finish_run(
                session,
                claim=claim,
                worker=self.name,
                now=self.db.now(session),
                trained_data_version=data_version,
                progress=progress,
            )

    def _release(self, claim: queue.Claim, *, retry_after_seconds: float = 0.0) -> None:
        with self.db.write() as session:
            queue.release_model(
                session,
                claim=claim,
                worker=self.name,
                now=self.db.now(session),
                retry_after_seconds=retry_after_seconds,
            )

    @property
    def is_stopping(self) -> bool:
        return self._stopping.is_set()


class _LeaseHooks:
    """The run's callbacks: every write re-checks the lease in its own transaction."""

    def __init__(
        self,
        worker: Worker,
        claim: queue.Claim,
        model_type: str,
        sample_count: int,
        data_version: int,
        keeper: _LeaseKeeper,
    ) -> None:
        self.keeper = keeper
        self.worker = worker
        self.claim = claim
        self.model_type = model_type
        self.sample_count = sample_count
        self.data_version = data_version

    def totals(self, progress: TrainingProgress) -> queue.Progress:
        return queue.Progress(
            steps=self.claim.steps + progress.steps,
            train_loss=progress.train_loss,
            val_loss=progress.val_loss,
        )

    def heartbeat(self, progress: TrainingProgress) -> Heartbeat:
        db, timings = self.worker.db, self.worker.timings
        with db.write() as session:
            current = queue.renew_lease(
                session,
                claim=self.claim,
                worker=self.worker.name,
                now=db.now(session),
                lease_seconds=timings.lease_seconds,
                progress=self.totals(progress),
            )
        if current is None:
            return Heartbeat.LEASE_LOST
        return Heartbeat.CONTINUE if current == self.data_version else Heartbeat.NEW_DATA

    def checkpoint(self, best: Predictor, progress: TrainingProgress) -> bool:
        weights = best.to_bytes()
        db, timings = self.worker.db, self.worker.timings
        with db.write() as session:
            now = db.now(session)
            if (
                queue.renew_lease(
                    session,
                    claim=self.claim,
                    worker=self.worker.name,
                    now=now,
                    lease_seconds=timings.lease_seconds,
                )
                is None
            ):
                return False
            return queue.save_checkpoint(
                session,
                claim=self.claim,
                worker=self.worker.name,
                now=now,
                model_type=self.model_type,
                weights=weights,
                trained_sample_count=self.sample_count,
                progress=self.totals(progress),
            )

    def should_stop(self) -> bool:
        return self.worker.is_stopping or self.keeper.is_lost


class _LeaseKeeper:
    """Renews the lease from a thread for as long as a model is loaded and trained, so that a
    slow load, a slow start or one long step never lets it lapse. The run's own heartbeat still
    reports progress and new data; a renewal that finds the lease gone ends the run."""

    def __init__(self, worker: Worker, claim: queue.Claim) -> None:
        self.worker = worker
        self.claim = claim
        self.is_lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease-{claim.model_id}", daemon=True
        )

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        db, timings = self.worker.db, self.worker.timings
        while not self._done.wait(timings.heartbeat_seconds):
            try:
                with db.write() as session:
                    current = queue.renew_lease(
                        session,
                        claim=self.claim,
                        worker=self.worker.name,
                        now=db.now(session),
                        lease_seconds=timings.lease_seconds,
                    )
            except StorageError:
                continue  # the database is away: the run's own writes will tell
            if current is None:
                self.is_lost = True
                return


def run_worker(settings: Settings) -> None:
    """`sgt worker`: one trainer on the configured database until SIGINT or SIGTERM."""
    import signal

    from sgt.storage.schema import migrate

    configure_torch(threads=settings.torch_threads)
    _check_device(settings.device)
    db = Database(settings.effective_database_url)
    migrate(db)
    worker = Worker(db, timings=WorkerTimings.from_settings(settings), device=settings.device)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.stop())
    try:
        worker.run_forever()
    finally:
        db.dispose()


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("SGT_DEVICE=cuda but torch sees no CUDA device")
