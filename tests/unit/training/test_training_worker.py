"""The Worker on the in-memory queue (`fake_queue`) with real model types on a few rows: it
converges, its checkpoint loads, it resumes on new data, it hands a model back when stopping or
failing, and it never writes back a deleted model.

`linear` converges in one step, so the worker's bookkeeping is checked without waiting on an
optimiser; the iterative `mlp` type drives the run that a delete interrupts. The same worker on
the real queue, on both backends, is `tests/storage/test_worker_leases.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from factories import make_samples
from fake_queue import FakeTrainingStore
from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState
from sgt.ml.base import ModelShape, ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.registry import get_model_type
from sgt.training.timings import WorkerTimings
from sgt.training.worker import FAILED_RUN_RETRY_SECONDS, Worker

MODEL_TYPE = "linear"
ITERATIVE_TYPE = "mlp"
SHAPE = ModelShape(3, 2)
PROBE = np.array([[0.1, -0.2, 0.3], [0.9, 0.5, -0.7]], np.float32)
TIMINGS = WorkerTimings(
    lease_seconds=5.0,
    heartbeat_seconds=0.2,
    checkpoint_seconds=0.2,
    poll_seconds=0.05,
    max_train_seconds=60.0,
)


@pytest.fixture
def store() -> FakeTrainingStore:
    return FakeTrainingStore()


def make_worker(
    store: FakeTrainingStore,
    *,
    run_seconds: float = TIMINGS.max_train_seconds,
    model_types: Callable[[str], ModelType] = get_model_type,
) -> Worker:
    queue = store.queue("test-worker", lease_seconds=TIMINGS.lease_seconds)
    timings = WorkerTimings(**{**TIMINGS.__dict__, "max_train_seconds": run_seconds})
    return Worker(queue, timings=timings, model_types=model_types)  # type: ignore[arg-type]


@pytest.fixture
def worker(store: FakeTrainingStore) -> Iterator[Worker]:
    trainer = make_worker(store)
    yield trainer
    trainer.stop()


def new_model(store: FakeTrainingStore, model_type: str = MODEL_TYPE) -> int:
    return store.add_model(ModelSpec(model_type, SHAPE.in_size, SHAPE.out_size), seed=7)


def upload(store: FakeTrainingStore, model_id: int, rows: int, seed: int = 0) -> None:
    store.upload(model_id, *make_samples(rows, seed=seed))


def test_a_model_is_trained_to_convergence_and_its_checkpoint_loads(
    store: FakeTrainingStore, worker: Worker
) -> None:
    model = new_model(store)
    untrained = get_model_type(MODEL_TYPE).initial(SHAPE, seed=7).predict(PROBE)
    upload(store, model, 24)
    assert worker.train_next() is True
    row = store.row(model)
    assert row.state == TrainingState.CONVERGED and row.lease_owner is None
    assert (row.sample_count, row.trained_sample_count) == (24, 24)
    assert row.steps > 0 and row.loss_history and row.train_loss is not None
    assert row.checkpoint is not None and row.checkpoint.model_type == MODEL_TYPE
    loaded = get_model_type(MODEL_TYPE).load(row.checkpoint.weights, device="cpu")
    assert not np.array_equal(loaded.predict(PROBE), untrained)
    assert worker.train_next() is False, "a converged model costs no CPU"


def test_new_data_resumes_training_from_the_current_weights(
    store: FakeTrainingStore, worker: Worker
) -> None:
    model = new_model(store)
    upload(store, model, 16)
    assert worker.train_next()
    first_version, steps_before = store.row(model).checkpoint_version, store.row(model).steps
    upload(store, model, 8, seed=1)
    assert store.row(model).state == TrainingState.QUEUED
    assert worker.train_next()
    row = store.row(model)
    assert row.state == TrainingState.CONVERGED
    assert row.trained_sample_count == 24
    assert row.steps > steps_before, "steps accumulate across runs"
    assert row.checkpoint_version > first_version


def test_a_stopping_worker_hands_the_model_back(store: FakeTrainingStore, worker: Worker) -> None:
    model = new_model(store)
    upload(store, model, 10)
    worker.stop()
    assert worker.train_next() is True
    row = store.row(model)
    assert (row.state, row.lease_owner) == (TrainingState.QUEUED, None)
    assert row.checkpoint is None


def test_a_failing_run_is_handed_back_to_retry_later(store: FakeTrainingStore) -> None:
    class BrokenType(ModelType):
        name, description = "broken", "raises on start"

        def parameter_count(self, shape: ModelShape) -> int:
            return 1

        def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
            raise NotImplementedError

        def load(self, data: bytes, *, device: str) -> Predictor:
            raise NotImplementedError

        def start_training(self, *args: Any, **kwargs: Any) -> TrainingRun:
            raise RuntimeError("this model type is broken")

    worker = make_worker(store, model_types=lambda _name: BrokenType())
    model = new_model(store, "broken")
    upload(store, model, 10)
    assert worker.train_next() is True
    row = store.row(model)
    assert (row.state, row.lease_owner) == (TrainingState.QUEUED, None)
    assert worker.train_next() is False, "a broken model never spins a trainer"
    until = worker.queue.seconds_until_claimable()
    assert until is not None and until > FAILED_RUN_RETRY_SECONDS - 5


class DeletingType(ModelType):
    """A real type, except that its runs delete the model after a few steps."""

    def __init__(self, real: ModelType, delete: Callable[[], None]) -> None:
        self.real = real
        self.name = real.name
        self.description = real.description
        self.delete = delete
        self.runs: list[DeletingRun] = []

    def parameter_count(self, shape: ModelShape) -> int:
        return self.real.parameter_count(shape)

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        return self.real.initial(shape, seed=seed)

    def load(self, data: bytes, *, device: str) -> Predictor:
        return self.real.load(data, device=device)

    def start_training(self, *args: Any, **kwargs: Any) -> TrainingRun:
        run = DeletingRun(self.real.start_training(*args, **kwargs), self.delete)
        self.runs.append(run)
        return run


class DeletingRun(TrainingRun):
    def __init__(self, real: TrainingRun, delete: Callable[[], None]) -> None:
        self.real = real
        self.delete = delete
        self.calls = 0
        self.calls_after_delete = 0

    def step(self) -> TrainingProgress:
        progress = self.real.step()
        self.calls += 1
        if self.calls == 3:
            self.delete()
        elif self.calls > 3:
            self.calls_after_delete += 1
        # Keep improving and never converge: only the lost lease can end this run.
        return TrainingProgress(progress.steps, progress.train_loss, None, True, False)

    def best(self) -> Predictor:
        return self.real.best()


def test_a_model_deleted_while_it_trains_is_never_written_back(store: FakeTrainingStore) -> None:
    doomed = new_model(store, ITERATIVE_TYPE)
    upload(store, doomed, 20)
    deleting = DeletingType(get_model_type(ITERATIVE_TYPE), lambda: store.delete(doomed))
    # A long run limit: only the lost lease can end this run soon.
    worker = make_worker(store, run_seconds=600.0, model_types=lambda _name: deleting)
    assert worker.train_next() is True
    # Heartbeats and checkpoints come every 0.2 s: the run noticed the lost lease within a few
    # steps, not at its time limit.
    assert len(deleting.runs) == 1 and deleting.runs[0].calls_after_delete < 50
    assert doomed not in store.rows
    assert worker.train_next() is False
