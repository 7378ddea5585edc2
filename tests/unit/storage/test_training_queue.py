"""The fake queue (`fake_queue`) and the real `TrainingQueue` (on SQLite, driven through the
services as the API drives it) behave the same on every method the worker uses. The real queue's
promises on both backends are `tests/storage/test_storage_contract.py`; this file keeps the fake
honest."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pytest
from sqlalchemy import select

from factories import make_model, make_samples, make_user
from fake_queue import FakeTrainingStore
from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState
from sgt.services import models, samples
from sgt.services.context import ServiceContext
from sgt.storage import training as training_rows
from sgt.storage.queue import Claim, Progress, TrainingQueue
from sgt.storage.tables import ModelRow

PROGRESS = Progress(steps=10, train_loss=0.5, val_loss=0.6)


class Harness(Protocol):
    """The API's side, played on one store or the other, and trainers' queues on it."""

    def queue(self, worker_name: str, lease_seconds: float = 30.0) -> Any: ...
    def new_model(self, name: str) -> int: ...
    def upload(self, model_id: int, rows: int, seed: int = 0) -> None: ...
    def clear(self, model_id: int) -> None: ...
    def delete(self, model_id: int) -> None: ...
    def state(self, model_id: int) -> TrainingState: ...


class FakeHarness:
    def __init__(self) -> None:
        self.store = FakeTrainingStore()

    def queue(self, worker_name: str, lease_seconds: float = 30.0) -> Any:
        return self.store.queue(worker_name, lease_seconds=lease_seconds)

    def new_model(self, name: str) -> int:
        return self.store.add_model(ModelSpec("std", 3, 2))

    def upload(self, model_id: int, rows: int, seed: int = 0) -> None:
        self.store.upload(model_id, *make_samples(rows, seed=seed))

    def clear(self, model_id: int) -> None:
        self.store.clear(model_id)

    def delete(self, model_id: int) -> None:
        self.store.delete(model_id)

    def state(self, model_id: int) -> TrainingState:
        return self.store.row(model_id).state


class DatabaseHarness:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.user = make_user(ctx, secret_id="alice")
        self.names: dict[int, str] = {}

    def queue(self, worker_name: str, lease_seconds: float = 30.0) -> Any:
        return TrainingQueue(self.ctx.db, worker_name=worker_name, lease_seconds=lease_seconds)

    def new_model(self, name: str) -> int:
        make_model(self.ctx, self.user, name=name)
        with self.ctx.db.read() as session:
            model_id = session.execute(
                select(ModelRow.id).where(ModelRow.name == name)
            ).scalar_one()
        self.names[model_id] = name
        return model_id

    def upload(self, model_id: int, rows: int, seed: int = 0) -> None:
        data = make_samples(rows, seed=seed)
        samples.upload_samples(
            self.ctx, self.user, app_name="app", name=self.names[model_id], train_data=data
        )

    def clear(self, model_id: int) -> None:
        samples.clear_samples(self.ctx, self.user, app_name="app", name=self.names[model_id])

    def delete(self, model_id: int) -> None:
        models.delete_model(self.ctx, self.user, app_name="app", name=self.names[model_id])

    def state(self, model_id: int) -> TrainingState:
        with self.ctx.db.read() as session:
            return training_rows.read_status(session, model_id).state


@pytest.fixture(params=["fake", "sqlite"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "fake":
        yield FakeHarness()
    else:
        yield DatabaseHarness(request.getfixturevalue("ctx"))


def claimed(queue: Any) -> Claim:
    held = queue.claim_next()
    assert held is not None
    return held


def checkpoint(queue: Any, held: Claim, weights: bytes = b"w") -> bool:
    saved: bool = queue.save_checkpoint(
        held, model_type="std", weights=weights, trained_sample_count=5, progress=PROGRESS
    )
    return saved


def wait_until(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


def test_claims_are_exclusive_and_oldest_first(harness: Harness) -> None:
    w1, w2 = harness.queue("w1"), harness.queue("w2")
    first, second = harness.new_model("first"), harness.new_model("second")
    assert w1.claim_next() is None and w1.seconds_until_claimable() is None
    harness.upload(first, 5)
    harness.upload(second, 5)
    harness.upload(first, 2)
    assert w1.seconds_until_claimable() == 0
    held = claimed(w1)
    assert (held.model_id, held.model_type, held.in_size, held.out_size) == (first, "std", 3, 2)
    assert claimed(w2).model_id == second
    assert w1.claim_next() is None
    assert harness.state(first) is TrainingState.TRAINING


def test_load_reads_samples_version_and_starting_weights(harness: Harness) -> None:
    queue = harness.queue("w1")
    model = harness.new_model("m")
    harness.upload(model, 4)
    harness.upload(model, 3, seed=1)
    held = claimed(queue)
    data = queue.load(held)
    assert data is not None and data.start is None
    assert (data.spec, data.data_version) == (ModelSpec("std", 3, 2), held.data_version)
    expected = np.concatenate([make_samples(4)[0], make_samples(3, seed=1)[0]])
    np.testing.assert_array_equal(data.inputs, expected)
    assert data.inputs.dtype == np.float32 and data.targets.shape == (7, 2)
    assert checkpoint(queue, held, b"v1") and queue.finish(
        held, trained_data_version=data.data_version, progress=None
    )
    harness.upload(model, 1)
    again = queue.load(claimed(queue))
    assert again is not None and again.start is not None
    assert (again.start.model_type, again.start.weights) == ("std", b"v1")
    harness.delete(model)
    assert queue.load(held) is None


def test_renewal_reports_new_data_and_an_upload_keeps_the_lease(harness: Harness) -> None:
    queue = harness.queue("w1")
    model = harness.new_model("m")
    harness.upload(model, 5)
    held = claimed(queue)
    assert queue.renew(held, progress=PROGRESS) == held.data_version
    harness.upload(model, 3)
    assert queue.renew(held) == held.data_version + 1
    assert harness.state(model) is TrainingState.TRAINING


def test_finish_converges_or_requeues_when_data_arrived(harness: Harness) -> None:
    queue = harness.queue("w1")
    model = harness.new_model("m")
    harness.upload(model, 5)
    held = claimed(queue)
    assert queue.finish(held, trained_data_version=held.data_version, progress=PROGRESS)
    assert harness.state(model) is TrainingState.CONVERGED and queue.claim_next() is None
    harness.upload(model, 2)
    held = claimed(queue)
    harness.upload(model, 2)
    assert queue.finish(held, trained_data_version=held.data_version, progress=None)
    assert harness.state(model) is TrainingState.QUEUED
    assert claimed(queue).data_version == held.data_version + 1


def test_release_requeues_at_once_or_after_a_back_off(harness: Harness) -> None:
    queue = harness.queue("w1")
    model = harness.new_model("m")
    harness.upload(model, 5)
    queue.release(claimed(queue))
    assert harness.state(model) is TrainingState.QUEUED
    queue.release(claimed(queue), retry_after_seconds=60)
    assert queue.claim_next() is None
    until = queue.seconds_until_claimable()
    assert until is not None and 50 < until <= 60


@pytest.mark.parametrize("take_away", ["delete", "clear"])
def test_a_lease_taken_away_refuses_every_write(harness: Harness, take_away: str) -> None:
    queue = harness.queue("w1")
    model = harness.new_model("m")
    harness.upload(model, 5)
    held = claimed(queue)
    getattr(harness, take_away)(model)
    assert queue.renew(held) is None
    assert checkpoint(queue, held) is False
    assert queue.finish(held, trained_data_version=held.data_version, progress=None) is False
    queue.release(held)  # refused without a word
    if take_away == "clear":
        assert harness.state(model) is TrainingState.UNTRAINED
        assert queue.claim_next() is None


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_refused(harness: Harness) -> None:
    old, heir = harness.queue("old", lease_seconds=0.3), harness.queue("heir")
    model = harness.new_model("m")
    harness.upload(model, 5)
    stale = claimed(old)
    assert heir.claim_next() is None
    wait_until(lambda: old.seconds_until_claimable() == 0, seconds=5)
    assert checkpoint(old, stale, b"still mine"), "expired, but nobody took it over: still held"
    taken: list[Claim] = []
    wait_until(lambda: (held := heir.claim_next()) and taken.append(held) or taken, seconds=5)
    assert taken[0].model_id == model
    assert old.renew(stale) is None and checkpoint(old, stale, b"stale") is False
    assert checkpoint(heir, taken[0], b"fresh")
