"""The trainer's lease promises, on both backends, with a fake model type that costs no CPU:
a deleted model stops within one heartbeat, a trainer that lost its lease writes nothing, a
killed trainer's model is resumed once its lease expires, an idle trainer sleeps until work
arrives (NOTIFY on PostgreSQL, a bounded poll on SQLite)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from test_storage_contract import add_model, add_user, claim, state_of, upload

from sgt.domain.training import TrainingState
from sgt.ml import base
from sgt.ml.base import ModelShape, Predictor, TrainingProgress, TrainingRun
from sgt.storage import checkpoints, leases, models
from sgt.storage.engine import Database
from sgt.storage.notify import WorkSignal
from sgt.storage.queue import Claim, Progress, TrainingQueue
from sgt.training.timings import WorkerTimings
from sgt.training.worker import Worker

FAKE_TYPE = "fake-steps"
STEP_SECONDS = 0.005


class CountingPredictor(Predictor):
    def __init__(self, level: float) -> None:
        self.level = level

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.full((len(inputs), 2), self.level, dtype=np.float32)

    def to_bytes(self) -> bytes:
        return struct.pack("<d", self.level)


class CountingRun(TrainingRun):
    """Improves by one every step; converges after `steps_to_converge` steps."""

    def __init__(self, start: float, steps_to_converge: int) -> None:
        self.level, self.steps, self.limit = start, 0, steps_to_converge

    def step(self) -> TrainingProgress:
        time.sleep(STEP_SECONDS)  # stands for a bounded piece of real work
        self.steps += 1
        self.level += 1
        return TrainingProgress(
            self.steps, 1 / self.steps, None, True, is_converged=self.steps >= self.limit
        )

    def best(self) -> Predictor:
        return CountingPredictor(self.level)


class CountingType(base.ModelType):
    name = FAKE_TYPE
    description = "test double"
    steps_to_converge = 20
    start_seconds = 0.0
    # Called after each second-long slice of a slow start, while the lease keeper alone holds on.
    during_start: Callable[[], object] = staticmethod(lambda: None)

    def parameter_count(self, shape: ModelShape) -> int:
        return 1

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        return CountingPredictor(0.0)

    def load(self, data: bytes, *, device: str) -> Predictor:
        return CountingPredictor(struct.unpack("<d", data)[0])

    def start_training(
        self,
        shape: ModelShape,
        inputs: np.ndarray,
        targets: np.ndarray,
        *,
        start: Predictor | None,
        seed: int,
        device: str,
    ) -> TrainingRun:
        level = start.level if isinstance(start, CountingPredictor) else 0.0
        remaining = self.start_seconds
        while remaining > 0:
            time.sleep(min(remaining, 0.5))  # stands for a slow set-up (big data, kernel matrices)
            remaining -= 0.5
            self.during_start()
        return CountingRun(level, self.steps_to_converge)


@pytest.fixture
def fake_type() -> CountingType:
    return CountingType()


class WatchedSignal(WorkSignal):
    """The real work signal, telling the test when the worker has gone to sleep on it."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url)
        self.is_waiting = threading.Event()

    def wait(self, timeout_seconds: float) -> None:
        self.is_waiting.set()
        super().wait(timeout_seconds)


class WatchedQueue(TrainingQueue):
    """The real queue, counting the worker's looks for work and watching its sleep."""

    def __init__(self, db: Database, **identity: Any) -> None:
        super().__init__(db, **identity)
        self.signal = WatchedSignal(db.url)
        self.claims_tried = 0

    def work_signal(self) -> WorkSignal:
        return self.signal

    def claim_next(self) -> Claim | None:
        self.claims_tried += 1
        return super().claim_next()


def make_worker(
    db: Database,
    model_type: CountingType,
    name: str,
    *,
    queue_class: type = TrainingQueue,
    **overrides: float,
) -> Worker:
    chosen = timings(**overrides)
    queue = queue_class(db, worker_name=name, lease_seconds=chosen.lease_seconds)
    return Worker(queue, timings=chosen, model_types=lambda _name: model_type)


def timings(**overrides: float) -> WorkerTimings:
    values = dict(
        lease_seconds=5.0,
        heartbeat_seconds=0.1,
        checkpoint_seconds=0.05,
        poll_seconds=0.2,
        max_train_seconds=60.0,
    )
    values.update(overrides)
    return WorkerTimings(**values)


def fake_model(db: Database) -> int:
    model_id = add_model(db, add_user(db))
    with db.write() as session:
        session.get_one(models.ModelRow, model_id).model_type = FAKE_TYPE
    return model_id


def weights_of(db: Database, model_id: int) -> float | None:
    with db.read() as session:
        row = checkpoints.load_checkpoint(session, model_id)
        return None if row is None else struct.unpack("<d", row.weights)[0]


def wait_until(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


@pytest.fixture
def in_thread() -> Iterator[Callable[[Callable[[], object]], threading.Thread]]:
    started: list[threading.Thread] = []

    def start(target: Callable[[], object]) -> threading.Thread:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.join(timeout=10)


def test_a_worker_trains_a_queued_model_to_convergence(
    db: Database, fake_type: CountingType
) -> None:
    model_id = fake_model(db)
    upload(db, model_id)
    assert make_worker(db, fake_type, "w1").train_next()
    assert state_of(db, model_id) is TrainingState.CONVERGED
    assert weights_of(db, model_id) == CountingType.steps_to_converge
    with db.read() as session:
        (lease,) = leases.lease_history(session)
    assert lease.was_released


def test_deleting_a_model_stops_its_training(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    # The run never converges and may run for 60 s: only the lost lease can end it sooner.
    # (How soon after the delete it stops is a figure of bench/trainer.py.)
    fake_type.steps_to_converge = 10**9
    model_id = fake_model(db)
    upload(db, model_id)
    worker = make_worker(db, fake_type, "w1", heartbeat_seconds=0.2)
    thread = in_thread(worker.train_next)
    wait_until(lambda: weights_of(db, model_id) is not None, seconds=10)
    with db.write() as session:
        models.delete_model(session, model_id)
    wait_until(lambda: not thread.is_alive(), seconds=10)
    assert weights_of(db, model_id) is None  # nothing written back after the delete


def test_a_trainer_that_lost_its_lease_never_overwrites_newer_weights(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    fake_type.steps_to_converge = 10**9
    model_id = fake_model(db)
    upload(db, model_id)
    # Its lease runs out long before its first heartbeat: another trainer takes the model over.
    slow = make_worker(
        db, fake_type, "slow", lease_seconds=0.3, heartbeat_seconds=1.0, checkpoint_seconds=30
    )
    thread = in_thread(slow.train_next)
    wait_until(lambda: state_of(db, model_id) is TrainingState.TRAINING, seconds=5)
    fast = TrainingQueue(db, worker_name="fast", lease_seconds=5.0)
    taken: list[Claim] = []
    wait_until(lambda: (held := fast.claim_next()) and taken.append(held) or taken, seconds=5)
    assert fast.save_checkpoint(
        taken[0],
        model_type=FAKE_TYPE,
        weights=struct.pack("<d", -1.0),
        trained_sample_count=4,
        progress=Progress(steps=1, train_loss=1.0, val_loss=None),
    )
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert weights_of(db, model_id) == -1.0
    with db.read() as session:
        history = leases.lease_history(session)
    assert [lease.worker for lease in history] == ["slow", "fast"]
    assert leases.overlapping_leases(history) == []


def test_the_lease_outlives_a_start_slower_than_the_lease(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    fake_type.start_seconds = 1.5
    model_id = fake_model(db)
    upload(db, model_id)
    # Another trainer looks after each slice of the start, by when a lease left alone expired.
    looks: list[Claim | None] = []
    fake_type.during_start = lambda: looks.append(claim(db, "w2"))
    worker = make_worker(db, fake_type, "w1", lease_seconds=0.5, heartbeat_seconds=0.1)
    assert worker.train_next()
    assert looks == [None, None, None]
    assert state_of(db, model_id) is TrainingState.CONVERGED
    with db.read() as session:
        assert [lease.worker for lease in leases.lease_history(session)] == ["w1"]


def test_a_dead_trainers_model_is_resumed_once_its_lease_expires(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    model_id = fake_model(db)
    upload(db, model_id)
    assert claim(db, "killed", lease_seconds=0.5) is not None  # and never heard of again
    # The idle bound is long: only the lease expiry, read from the database, can wake it.
    worker = make_worker(db, fake_type, "heir", poll_seconds=30, lease_seconds=30)
    in_thread(worker.run_forever)
    try:
        wait_until(lambda: state_of(db, model_id) is TrainingState.CONVERGED, seconds=8)
    finally:
        worker.stop()
    with db.read() as session:
        history = leases.lease_history(session)
    assert [lease.worker for lease in history] == ["killed", "heir"]
    assert leases.overlapping_leases(history) == []


def test_an_idle_worker_sleeps_until_an_upload_wakes_it(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    # PostgreSQL: a 30 s bound and an 8 s deadline, so only the upload's NOTIFY can explain the
    # start; SQLite has no NOTIFY and its bounded poll finds the upload. (The CPU an idle trainer
    # uses is a figure of bench/trainer.py.)
    poll = 0.2 if db.is_sqlite else 30.0
    worker = make_worker(
        db, fake_type, "idle", queue_class=WatchedQueue, poll_seconds=poll, lease_seconds=30
    )
    queue = worker.queue
    assert isinstance(queue, WatchedQueue)
    thread = in_thread(worker.run_forever)
    model_id = fake_model(db)
    assert queue.signal.is_waiting.wait(timeout=10), "the idle worker never went to sleep"
    if not db.is_sqlite:
        assert queue.claims_tried == 1, "asleep on PostgreSQL: no look for work until woken"
    upload(db, model_id)
    wait_until(lambda: state_of(db, model_id) is TrainingState.CONVERGED, seconds=8)
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_heartbeat_too_slow_for_the_lease_is_shortened(tmp_path: object) -> None:
    from sgt.config import Settings

    slow = Settings(data_dir=tmp_path, lease_seconds=3.0, heartbeat_seconds=5.0)
    assert WorkerTimings.from_settings(slow).heartbeat_seconds == 1.0
    fine = Settings(data_dir=tmp_path, lease_seconds=30.0, heartbeat_seconds=5.0)
    assert WorkerTimings.from_settings(fine).heartbeat_seconds == 5.0
