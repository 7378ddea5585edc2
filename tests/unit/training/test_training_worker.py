"""The Worker on a real SQLite file with real model types on a few rows: it converges, its
checkpoint loads, it resumes on new data, and it never writes back a deleted model.

`linear` converges in one step, so the worker's bookkeeping is checked without waiting on an
optimiser; the iterative `mlp` type drives the run that a delete interrupts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from factories import make_model, make_samples, make_user
from sgt.config import Settings
from sgt.domain.training import TrainingState
from sgt.ml.base import ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.registry import get_model_type
from sgt.services import models, samples
from sgt.services.context import ServiceContext
from sgt.services.inference import run_model
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage.tables import CheckpointRow, ModelRow, TrainingRow
from sgt.training import worker as worker_module
from sgt.training.worker import Worker, WorkerTimings

MODEL_TYPE = "linear"
ITERATIVE_TYPE = "mlp"
RUN_SECONDS = 60.0
PROBE = np.array([[0.1, -0.2, 0.3], [0.9, 0.5, -0.7]], np.float32)


@pytest.fixture
def user(ctx: ServiceContext) -> CurrentUser:
    return make_user(ctx, secret_id="alice")


def make_worker(ctx: ServiceContext, settings: Settings, *, run_seconds: float) -> Worker:
    timings = WorkerTimings.from_settings(
        settings.model_copy(update={"max_train_seconds": run_seconds})
    )
    return Worker(ctx.db, timings=timings, name="test-worker")


@pytest.fixture
def worker(ctx: ServiceContext, settings: Settings) -> Iterator[Worker]:
    trainer = make_worker(ctx, settings, run_seconds=RUN_SECONDS)
    yield trainer
    trainer.stop()


def upload(ctx: ServiceContext, user: CurrentUser, name: str, rows: int, seed: int = 0) -> None:
    data = make_samples(rows, seed=seed)
    samples.upload_samples(ctx, user, app_name="app", name=name, train_data=data)


def model_id(ctx: ServiceContext, name: str) -> int:
    with ctx.db.read() as session:
        return session.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar_one()


def checkpoint_of(ctx: ServiceContext, model: int) -> CheckpointRow | None:
    with ctx.db.read() as session:
        return checkpoint_store.load_checkpoint(session, model)


def test_a_model_is_trained_to_convergence_and_served(
    ctx: ServiceContext, user: CurrentUser, worker: Worker
) -> None:
    make_model(ctx, user, name="m", model_type=MODEL_TYPE)
    untrained = run_model(ctx, user, app_name="app", name="m", data=PROBE)
    upload(ctx, user, "m", 24)
    assert worker.train_next() is True
    status = samples.read_training_status(ctx, user, app_name="app", name="m")
    assert status.state == TrainingState.CONVERGED
    assert (status.sample_count, status.trained_sample_count) == (24, 24)
    assert status.steps > 0 and status.loss_history and status.train_loss is not None
    checkpoint = checkpoint_of(ctx, model_id(ctx, "m"))
    assert checkpoint is not None and checkpoint.model_type == MODEL_TYPE
    loaded = get_model_type(MODEL_TYPE).load(checkpoint.weights, device="cpu")
    served = run_model(ctx, user, app_name="app", name="m", data=PROBE)
    assert np.array_equal(served, loaded.predict(PROBE))
    assert not np.array_equal(served, untrained)
    assert worker.train_next() is False, "a converged model costs no CPU"


def test_new_data_resumes_training_from_the_current_weights(
    ctx: ServiceContext, user: CurrentUser, worker: Worker
) -> None:
    make_model(ctx, user, name="m", model_type=MODEL_TYPE)
    upload(ctx, user, "m", 16)
    assert worker.train_next()
    first = checkpoint_of(ctx, model_id(ctx, "m"))
    steps_before = samples.read_training_status(ctx, user, app_name="app", name="m").steps
    upload(ctx, user, "m", 8, seed=1)
    assert samples.read_training_status(ctx, user, app_name="app", name="m").state == "queued"
    assert worker.train_next()
    second = checkpoint_of(ctx, model_id(ctx, "m"))
    status = samples.read_training_status(ctx, user, app_name="app", name="m")
    assert status.state == TrainingState.CONVERGED
    assert status.trained_sample_count == 24
    assert status.steps > steps_before, "steps accumulate across runs"
    assert first is not None and second is not None and second.version > first.version


def test_a_stopping_worker_hands_the_model_back(
    ctx: ServiceContext, user: CurrentUser, worker: Worker
) -> None:
    make_model(ctx, user, name="m", model_type=MODEL_TYPE)
    upload(ctx, user, "m", 10)
    worker.stop()
    assert worker.train_next() is True
    with ctx.db.read() as session:
        row = session.get_one(TrainingRow, model_id(ctx, "m"))
        assert (row.state, row.lease_owner) == (TrainingState.QUEUED, None)
    assert checkpoint_of(ctx, model_id(ctx, "m")) is None


class DeletingType(ModelType):
    """The real `std` type, except that its run deletes the model after a few steps."""

    def __init__(self, real: ModelType, delete: Any) -> None:
        self.real = real
        self.name = real.name
        self.description = real.description
        self.delete = delete

    def parameter_count(self, shape: Any) -> int:
        return self.real.parameter_count(shape)

    def initial(self, shape: Any, *, seed: int) -> Predictor:
        return self.real.initial(shape, seed=seed)

    def load(self, data: bytes, *, device: str) -> Predictor:
        return self.real.load(data, device=device)

    def start_training(self, *args: Any, **kwargs: Any) -> TrainingRun:
        return DeletingRun(self.real.start_training(*args, **kwargs), self.delete)


class DeletingRun(TrainingRun):
    def __init__(self, real: TrainingRun, delete: Any) -> None:
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


def test_a_model_deleted_while_it_trains_is_never_written_back(
    ctx: ServiceContext, user: CurrentUser, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long run limit: only the lost lease can end this run soon.
    worker = make_worker(ctx, settings, run_seconds=600.0)
    make_model(ctx, user, name="doomed", model_type=ITERATIVE_TYPE)
    upload(ctx, user, "doomed", 20)
    doomed = model_id(ctx, "doomed")
    runs: list[DeletingRun] = []

    def delete() -> None:
        models.delete_model(ctx, user, app_name="app", name="doomed")

    real = get_model_type(ITERATIVE_TYPE)

    def deleting_type(name: str) -> ModelType:
        model_type = DeletingType(real, delete)
        original = model_type.start_training

        def start(*args: Any, **kwargs: Any) -> TrainingRun:
            run = original(*args, **kwargs)
            assert isinstance(run, DeletingRun)
            runs.append(run)
            return run

        model_type.start_training = start  # type: ignore[method-assign]
        return model_type

    monkeypatch.setattr(worker_module, "get_model_type", deleting_type)
    assert worker.train_next() is True
    # Heartbeats and checkpoints come every 0.2 s: the run noticed the lost lease within a few
    # steps, not at its time limit.
    assert len(runs) == 1 and runs[0].calls_after_delete < 50
    with ctx.db.read() as session:
        for table in (ModelRow, TrainingRow, CheckpointRow):
            key = table.id if table is ModelRow else table.model_id
            count = session.execute(select(func.count()).where(key == doomed)).scalar_one()
            assert count == 0, table.__name__
    assert worker.train_next() is False
