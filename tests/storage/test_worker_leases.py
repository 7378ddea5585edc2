"""The trainer's lease promises, on both backends, with a fake model type that costs no CPU:
a deleted model stops within one heartbeat, a trainer that lost its lease writes nothing, a
killed trainer's model is resumed once its lease expires, an idle trainer sleeps until work
arrives (NOTIFY on PostgreSQL, a bounded poll on SQLite)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from test_storage_contract import add_model, add_user, claim, state_of, upload

from sgt.domain.training import TrainingState
from sgt.ml import base, registry
from sgt.ml.base import ModelShape, Predictor, TrainingProgress, TrainingRun
from sgt.storage import checkpoints, leases, models
from sgt.storage import training as queue
from sgt.storage.engine import Database
from sgt.training.worker import Worker, WorkerTimings

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
        time.sleep(self.start_seconds)  # stands for a slow set-up (big data, kernel matrices)
        return CountingRun(level, self.steps_to_converge)


@pytest.fixture
def fake_type(monkeypatch: pytest.MonkeyPatch) -> CountingType:
    model_type = CountingType()
    monkeypatch.setitem(registry.MODEL_TYPES, FAKE_TYPE, model_type)
    return model_type


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


def test_a_worker_trains_a_queued_model_to_convergence(db: Database, fake_type: object) -> None:
    model_id = fake_model(db)
    upload(db, model_id)
    assert Worker(db, timings=timings(), name="w1").train_next()
    assert state_of(db, model_id) is TrainingState.CONVERGED
    assert weights_of(db, model_id) == CountingType.steps_to_converge
    with db.read() as session:
        (lease,) = leases.lease_history(session)
    assert lease.was_released


def test_deleting_a_model_stops_its_training_within_one_heartbeat(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    fake_type.steps_to_converge = 10**9
    model_id = fake_model(db)
    upload(db, model_id)
    worker = Worker(db, timings=timings(heartbeat_seconds=0.2), name="w1")
    thread = in_thread(worker.train_next)
    wait_until(lambda: weights_of(db, model_id) is not None, seconds=10)
    with db.write() as session:
        models.delete_model(session, model_id)
    deleted_at = time.monotonic()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - deleted_at < 0.2 + 1.0
    assert weights_of(db, model_id) is None  # nothing written back after the delete


def test_a_trainer_that_lost_its_lease_never_overwrites_newer_weights(
    db: Database, fake_type: CountingType, in_thread: Callable[..., threading.Thread]
) -> None:
    fake_type.steps_to_converge = 10**9
    model_id = fake_model(db)
    upload(db, model_id)
    # Its lease runs out long before its first heartbeat: another trainer takes the model over.
    slow = Worker(
        db,
        timings=timings(lease_seconds=0.3, heartbeat_seconds=1.0, checkpoint_seconds=30),
        name="slow",
    )
    thread = in_thread(slow.train_next)
    wait_until(lambda: state_of(db, model_id) is TrainingState.TRAINING, seconds=5)
    taken: list[queue.Claim] = []
    wait_until(lambda: (held := claim(db, "fast")) and taken.append(held) or taken, seconds=5)
    with db.write() as session:
        assert queue.save_checkpoint(
            session,
            claim=taken[0],
            worker="fast",
            now=db.now(session),
            model_type=FAKE_TYPE,
            weights=struct.pack("<d", -1.0),
            trained_sample_count=4,
            progress=queue.Progress(steps=1, train_loss=1.0, val_loss=None),
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
    worker = Worker(db, timings=timings(lease_seconds=0.5, heartbeat_seconds=0.1), name="w1")
    thread = in_thread(worker.train_next)
    wait_until(lambda: state_of(db, model_id) is TrainingState.TRAINING, seconds=5)
    while thread.is_alive():  # every look during the slow start and the run finds it held
        assert claim(db, "w2") is None
        time.sleep(0.05)
    assert state_of(db, model_id) is TrainingState.CONVERGED
    with db.read() as session:
        assert [lease.worker for lease in leases.lease_history(session)] == ["w1"]


def test_a_dead_trainers_model_is_resumed_once_its_lease_expires(
    db: Database, fake_type: object, in_thread: Callable[..., threading.Thread]
) -> None:
    model_id = fake_model(db)
    upload(db, model_id)
    assert claim(db, "killed", lease_seconds=0.5) is not None  # and never heard of again
    # The idle bound is long: only the lease expiry, read from the database, can wake it.
    worker = Worker(db, timings=timings(poll_seconds=30, lease_seconds=30), name="heir")
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
    db: Database, fake_type: object, in_thread: Callable[..., threading.Thread]
) -> None:
    # PostgreSQL: a 30 s bound, so only the upload's NOTIFY can explain a prompt start.
    poll = 0.2 if db.is_sqlite else 30.0
    worker = Worker(db, timings=timings(poll_seconds=poll, lease_seconds=30), name="idle")
    thread = in_thread(worker.run_forever)
    model_id = fake_model(db)
    time.sleep(0.3)  # let it settle into its wait before measuring
    cpu_before = time.process_time()
    time.sleep(1.0)  # a measuring window, not a synchronisation
    assert time.process_time() - cpu_before < 0.05
    uploaded = time.monotonic()
    upload(db, model_id)
    wait_until(lambda: state_of(db, model_id) is TrainingState.CONVERGED, seconds=5)
    assert time.monotonic() - uploaded < 3.0
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_heartbeat_too_slow_for_the_lease_is_shortened(tmp_path: object) -> None:
    from sgt.config import Settings

    slow = Settings(data_dir=tmp_path, lease_seconds=3.0, heartbeat_seconds=5.0)
    assert WorkerTimings.from_settings(slow).heartbeat_seconds == 1.0
    fine = Settings(data_dir=tmp_path, lease_seconds=30.0, heartbeat_seconds=5.0)
    assert WorkerTimings.from_settings(fine).heartbeat_seconds == 5.0
