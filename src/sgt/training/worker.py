"""The trainer's loop: claim a model, train it from its latest checkpoint, report, repeat.

Several workers (threads, processes, machines) share one database; they meet the API only at the
training queue (`sgt.storage.queue.TrainingQueue`), which owns every transaction. A worker renews
its lease on a timer and stops a run as soon as a renewal finds the lease gone (the model was
deleted, or taken over after expiry).

An idle worker sleeps until work may be waiting: a NOTIFY from an upload (PostgreSQL), the moment
the next lease expires or back-off ends, or at the latest `idle_seconds` (a bounded poll, the only
wake-up on SQLite). It runs no query and uses no CPU in between, and beats (its `trainers` row)
at least every `heartbeat_seconds`, idle or not.

Storage errors that say the database is away or busy (`StorageUnavailable`) never end the loop:
the worker logs the outage once, backs off (`sgt.training.outage`), listens again and carries on.
A run the outage interrupted is handed back to the queue once storage answers again (or, if its
lease expired meanwhile, is simply claimable), and resumes from its last checkpoint. The loop ends
only on `stop()` or on an error it cannot survive (a bug: the supervisor restarts the process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sgt.config import Settings
from sgt.errors import StorageError, StorageUnavailable
from sgt.ml.base import (
    ModelShape,
    ModelType,
    Predictor,
    TrainingProgress,
    TrainingRun,
)
from sgt.ml.registry import get_model_type
from sgt.ml.runtime import configure_torch
from sgt.storage.engine import Database
from sgt.storage.queue import Claim, Progress, TrainingData, TrainingQueue
from sgt.training.outage import Outage
from sgt.training.timings import WorkerTimings, trainer_name
from sgt.training.trainer import (
    Heartbeat,
    Outcome,
    RunResult,
    drive_run,
    target_scale,
    validation_errors,
)

log = logging.getLogger("sgt.worker")

# A run that raised is retried after this long (or the lease time, if longer), not at once.
FAILED_RUN_RETRY_SECONDS = 60.0

ModelTypes = Callable[[str], ModelType]  # a model type by name; raises UnknownModelType


class Worker:
    """One trainer: trains one model at a time from `queue` until `stop()`.

    `queue` holds the trainer's identity and lease length, which `timings` must repeat (raises
    ValueError otherwise); `model_types` finds a model type by name (the registry unless a test
    passes its own).
    """

    def __init__(
        self,
        queue: TrainingQueue,
        *,
        timings: WorkerTimings,
        device: str = "cpu",
        model_types: ModelTypes = get_model_type,
        outage: Outage | None = None,
    ) -> None:
        if queue.lease_seconds != timings.lease_seconds:
            raise ValueError("the queue's lease and the worker's timings disagree")
        self.queue = queue
        self.timings = timings
        self.device = device
        self.name = queue.worker_name
        self._model_types = model_types
        self._stopping = threading.Event()
        self._work = queue.work_signal()
        self.outage = outage or Outage(self.name)
        # A claim whose run an outage cut short, and its retry delay: handed back once storage
        # answers again, so the model need not wait for its lease to expire.
        self._interrupted: tuple[Claim, float] | None = None

    def stop(self) -> None:
        """Ask the loop to end; a model in training is checkpointed and released. Safe to call
        from a signal handler or another thread."""
        self._stopping.set()
        self._work.wake()

    @property
    def is_stopping(self) -> bool:
        return self._stopping.is_set()

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
                try:
                    self._look_for_work()
                except StorageUnavailable as error:
                    self._work.wait(self.outage.failed(_reason(error)))  # stop() ends it early
        finally:
            self._work.close()
        self._leave()
        log.info("trainer %s stopped", self.name)

    def _look_for_work(self) -> None:
        """One turn of the loop: hand back an interrupted run, beat, train or wait."""
        if self._interrupted is not None:
            claim, retry = self._interrupted
            self.queue.release(claim, retry_after_seconds=retry)
            self._interrupted = None
        self.queue.beat(None)
        self.outage.succeeded()
        if not self.train_next() and not self._stopping.is_set():
            self._work.wait(self._idle_wait_seconds())

    def train_next(self) -> bool:
        """Claim and train one model; False when nothing was waiting. Raises
        StorageUnavailable when the database went away (the claim is handed back later)."""
        claim = self.queue.claim_next()
        if claim is None:
            return False
        log.info("training model %s (%s)", claim.model_id, claim.model_type)
        retry = 0.0
        try:
            self.queue.beat(claim.model_id)
            with _Lease(
                self.queue, claim, renew_every_seconds=self.timings.heartbeat_seconds
            ) as lease:
                self._train(claim, lease)
        except StorageUnavailable:
            self._interrupted = (claim, retry)
            raise
        except Exception:
            retry = max(FAILED_RUN_RETRY_SECONDS, self.timings.lease_seconds)
            log.exception("training model %s failed; retrying it in %.0f s", claim.model_id, retry)
            try:
                self.queue.release(claim, retry_after_seconds=retry)
            except StorageUnavailable:
                self._interrupted = (claim, retry)
                raise
        return True

    def _leave(self) -> None:
        """A clean stop: hand back an interrupted run and delete this trainer's row, if the
        database answers (else the lease expires and the row goes stale: both are fine)."""
        try:
            if self._interrupted is not None:
                self.queue.release(self._interrupted[0])
            self.queue.leave()
        except StorageError as error:
            log.warning("trainer %s: could not sign off (%s)", self.name, _reason(error))

    def _idle_wait_seconds(self) -> float:
        """Until the next lease expiry or back-off end, within the polling bound."""
        has_notifications = self.queue.has_notifications
        bound = self.timings.idle_seconds if has_notifications else self.timings.poll_seconds
        bound = min(bound, self.timings.heartbeat_seconds)  # an idle trainer beats too
        until = self.queue.seconds_until_claimable()
        # A hair past the expiry, so the claim's `expires < now` holds when we look.
        return bound if until is None else min(bound, until + 0.01)

    def _train(self, claim: Claim, lease: _Lease) -> None:
        data = self.queue.load(claim)
        if data is None:
            return  # deleted between the claim and the load
        model_type, start = self._resolve(data)
        if len(data.inputs) == 0:
            self.queue.finish(claim, trained_data_version=data.data_version, progress=None)
            return
        run = model_type.start_training(
            ModelShape(data.spec.in_size, data.spec.out_size),
            data.inputs,
            data.targets,
            start=start,
            seed=claim.seed,
            device=self.device,
        )
        hooks = _RunHooks(self, claim, data, run, model_type.name, lease)
        result = drive_run(
            run,
            hooks,
            heartbeat_seconds=self.timings.heartbeat_seconds,
            checkpoint_seconds=self.timings.checkpoint_seconds,
            max_seconds=self.timings.max_train_seconds,
        )
        self._conclude(claim, result, hooks, run)

    def _resolve(self, data: TrainingData) -> tuple[ModelType, Predictor | None]:
        """The model's type, and the stored weights decoded by the type that wrote them."""
        model_type = self._model_types(data.spec.model_type)
        if data.start is None:
            return model_type, None
        writer = self._model_types(data.start.model_type)
        return model_type, writer.load(data.start.weights, device=self.device)

    def _conclude(
        self, claim: Claim, result: RunResult, hooks: _RunHooks, run: TrainingRun
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
            self.queue.release(claim)
            return
        totals = None if result.progress is None else hooks.totals(result.progress)
        self.queue.finish(claim, trained_data_version=hooks.data_version, progress=totals)
        log.info(
            "model %s: %s after %s steps",
            claim.model_id,
            result.outcome.value,
            result.progress.steps if result.progress else 0,
        )


class _Lease:
    """The claim's lease while its model is loaded and trained: the one place it is renewed.

    A thread renews it every `renew_every_seconds`, so a slow load, a slow start or one long
    step never lets it lapse; the run's heartbeat renews it too, reporting progress. Whichever
    renewal finds it gone marks it lost, and the run ends.
    """

    def __init__(self, queue: TrainingQueue, claim: Claim, *, renew_every_seconds: float) -> None:
        self._queue = queue
        self._claim = claim
        self._renew_every_seconds = renew_every_seconds
        self.is_lost = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, name=f"lease-{claim.model_id}", daemon=True
        )

    def renew(self, progress: Progress | None = None) -> int | None:
        """The model's current data_version, or None once the lease is lost."""
        data_version = self._queue.renew(self._claim, progress=progress)
        if data_version is None:
            self.is_lost = True
        return data_version

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _keep(self) -> None:
        while not self._done.wait(self._renew_every_seconds):
            try:
                if self.renew() is None:
                    return
                self._queue.beat(self._claim.model_id)
            except StorageError:
                continue  # the database is away: the run's own writes will tell


class _RunHooks:
    """The run's callbacks (`sgt.training.trainer.RunHooks`), reporting to the queue."""

    def __init__(
        self,
        worker: Worker,
        claim: Claim,
        data: TrainingData,
        run: TrainingRun,
        model_type: str,
        lease: _Lease,
    ) -> None:
        self.worker = worker
        self.claim = claim
        self.data_version = data.data_version
        self.sample_count = len(data.inputs)
        self.run = run
        self.target_scale = target_scale(data.targets)
        self.model_type = model_type
        self.lease = lease

    def totals(self, progress: TrainingProgress) -> Progress:
        """The run's progress as the model's: steps count across all its runs."""
        return Progress(
            steps=self.claim.steps + progress.steps,
            train_loss=progress.train_loss,
            val_loss=progress.val_loss,
        )

    def heartbeat(self, progress: TrainingProgress) -> Heartbeat:
        current = self.lease.renew(self.totals(progress))
        if current is None:
            return Heartbeat.LEASE_LOST
        return Heartbeat.CONTINUE if current == self.data_version else Heartbeat.NEW_DATA

    def checkpoint(self, best: Predictor, progress: TrainingProgress) -> bool:
        # `best` is the run's best as of now, so the run's residuals are those of `best`.
        errors = validation_errors(self.run.validation_residuals(), target_scale=self.target_scale)
        return self.worker.queue.save_checkpoint(
            self.claim,
            model_type=self.model_type,
            weights=best.to_bytes(),
            trained_sample_count=self.sample_count,
            progress=self.totals(progress),
            errors=errors,
        )

    def should_stop(self) -> bool:
        return self.worker.is_stopping or self.lease.is_lost


def _reason(error: StorageError) -> str:
    """The driver's words for a storage error, one line (the domain message says less)."""
    cause = error.__cause__
    lines = str(cause).strip().splitlines() if cause is not None else []
    return lines[0] if lines else error.message


def run_worker(settings: Settings, *, restarts: int = 0) -> None:
    """`sgt worker`: one trainer on the configured database until SIGINT or SIGTERM;
    `restarts` is how often its supervisor (`sgt serve`) restarted it, shown in its row."""
    import signal

    from sgt.storage.schema import migrate

    configure_torch(threads=settings.torch_threads)
    _check_device(settings.device)
    db = Database(settings.effective_database_url)
    migrate(db)
    timings = WorkerTimings.from_settings(settings)
    queue = TrainingQueue(
        db,
        worker_name=trainer_name(),
        lease_seconds=timings.lease_seconds,
        keep_versions=settings.keep_versions,
        restarts=restarts,
    )
    worker = Worker(queue, timings=timings, device=settings.device)
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
