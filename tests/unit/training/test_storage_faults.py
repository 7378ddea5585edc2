"""The worker through storage faults: every trainer-side call of the queue (claim, load, renew,
checkpoint, finish, release, beat, the idle wait's `seconds_until_claimable`) fails with
`StorageUnavailable` on some of its calls, and the worker keeps going: it logs each outage once,
hands an interrupted run back, resumes it from its checkpoint and still trains the model.

The faults are injected by `FaultyQueue`, a wrapper around the in-memory queue (`fake_queue`);
the same worker on the real queue is `tests/storage/test_worker_leases.py`, and a real
PostgreSQL restart under real processes is `tests/e2e/test_e2e_storage_outage.py`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from factories import make_samples
from fake_queue import FakeTrainingQueue, FakeTrainingStore
from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState
from sgt.errors import StorageUnavailable
from sgt.ml.base import ModelShape
from sgt.ml.registry import get_model_type
from sgt.training.outage import Backoff, Outage
from sgt.training.timings import WorkerTimings
from sgt.training.worker import Worker

SHAPE = ModelShape(3, 2)
TIMINGS = WorkerTimings(
    lease_seconds=5.0,
    heartbeat_seconds=0.05,
    checkpoint_seconds=0.05,
    poll_seconds=0.02,
    max_train_seconds=1.5,
)
# What an idle worker keeps calling (the rest is called only with work to do).
IDLE_CALLS = ("claim_next", "beat", "seconds_until_claimable")
TRAINER_CALLS = (
    "claim_next",
    "load",
    "renew",
    "save_checkpoint",
    "finish",
    "release",
    "beat",
    "seconds_until_claimable",
)
DEADLINE_SECONDS = 60.0


class FaultyQueue:
    """`FakeTrainingQueue` whose trainer calls raise StorageUnavailable on the call numbers
    `failing(method, n)` picks (n counts that method's calls from 1); `faults` counts them."""

    def __init__(self, queue: FakeTrainingQueue, failing: Callable[[str, int], bool]) -> None:
        self._queue = queue
        self._failing = failing
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._queue, name)
        if name not in TRAINER_CALLS:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                fails = self._failing(name, self.calls[name])
                if fails:
                    self.faults[name] += 1
            if fails:
                raise StorageUnavailable("the database is unavailable")
            return attribute(*args, **kwargs)

        return call


def make_worker(queue: FaultyQueue) -> Worker:
    outage = Outage("faulty", backoff=Backoff(first_seconds=0.001, max_seconds=0.01))
    return Worker(queue, timings=TIMINGS, outage=outage)  # type: ignore[arg-type]


@contextmanager
def running(worker: Worker) -> Iterator[threading.Thread]:
    """`worker.run_forever()` in a thread; stopped and joined at the end."""
    thread = threading.Thread(target=worker.run_forever, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        worker.stop()
        thread.join(DEADLINE_SECONDS)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {DEADLINE_SECONDS} s"
        time.sleep(0.02)  # polling interval of a condition with a deadline


def loss_of(
    store: FakeTrainingStore, model_id: int, inputs: np.ndarray, targets: np.ndarray
) -> float:
    row = store.row(model_id)
    if row.checkpoint is None:
        predictor = get_model_type("mlp").initial(SHAPE, seed=7)
    else:
        predictor = get_model_type(row.checkpoint.model_type).load(
            row.checkpoint.weights, device="cpu"
        )
    return float(np.mean((predictor.predict(inputs) - targets) ** 2))


def test_the_worker_trains_through_faults_in_every_storage_call() -> None:
    store = FakeTrainingStore()
    # The first two calls of each kind fail, then the fourth: outages at start, in the middle of
    # a run (renew, checkpoint, finish) and while handing an interrupted run back (release).
    queue = FaultyQueue(store.queue("faulty", lease_seconds=5.0), lambda _, n: n in (1, 2, 4))
    worker = make_worker(queue)
    model = store.add_model(ModelSpec("mlp", SHAPE.in_size, SHAPE.out_size), seed=7)
    inputs, targets = make_samples(64, seed=3)
    store.upload(model, inputs, targets)
    untrained_loss = loss_of(store, model, inputs, targets)

    with running(worker) as thread:
        wait_until(lambda: store.row(model).state == TrainingState.CONVERGED, "converged")
        # It goes on working after the outages: new data is trained too.
        more_inputs, more_targets = make_samples(16, seed=4)
        store.upload(model, more_inputs, more_targets)
        wait_until(lambda: store.row(model).state == TrainingState.CONVERGED, "converged again")
        assert thread.is_alive(), "storage faults never end the worker"
        # The row turns idle at the loop's next beat, a moment after the run finished.
        wait_until(lambda: store.trainers == {"faulty": None}, "an idle trainer's row")
        # Stopped only once the idle loop's calls are past their last planned fault: a stop
        # during a back-off would leave that outage unfinished.
        wait_until(
            lambda: (
                all(queue.calls[name] > 4 for name in IDLE_CALLS) and not worker.outage.is_ongoing
            ),
            "past the last fault",
        )

    assert not thread.is_alive(), "stop() ends it"
    assert store.trainers == {}, "a clean stop removes the trainer's row"
    assert {name for name in TRAINER_CALLS if queue.faults[name] == 0} == set()
    row = store.row(model)
    assert (row.sample_count, row.trained_sample_count) == (80, 80)
    assert row.lease_owner is None
    # Interrupted runs resumed from their checkpoints: steps accumulate across runs, and the
    # stored weights fit the data far better than the untrained network.
    assert row.steps > 0 and row.checkpoint is not None
    assert loss_of(store, model, inputs, targets) < untrained_loss / 2
    assert worker.outage.count >= 3 and not worker.outage.is_ongoing


def test_an_outage_is_logged_once_when_it_begins_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeTrainingStore()
    # Every call fails until 30 of the loop's beats have failed: one long outage.
    down = threading.Event()
    down.set()
    queue = FaultyQueue(store.queue("flaky", lease_seconds=5.0), lambda *_: down.is_set())
    worker = make_worker(queue)
    model = store.add_model(ModelSpec("linear", SHAPE.in_size, SHAPE.out_size), seed=7)
    store.upload(model, *make_samples(24, seed=1))

    with caplog.at_level(logging.INFO, logger="sgt.worker"), running(worker):
        wait_until(lambda: queue.faults["beat"] >= 30, "30 failed tries")
        down.clear()
        wait_until(lambda: store.row(model).state == TrainingState.CONVERGED, "converged")

    messages = [record.getMessage() for record in caplog.records]
    assert len([text for text in messages if "storage unavailable" in text]) == 1
    back = [text for text in messages if "storage is back after" in text]
    assert len(back) == 1 and worker.outage.count == 1


def test_a_run_cut_short_by_an_outage_is_handed_back_when_storage_returns() -> None:
    store = FakeTrainingStore()
    # The run's first checkpoint fails; the lease (5 s) is still ours when storage is back.
    queue = FaultyQueue(
        store.queue("cut", lease_seconds=5.0), lambda name, n: (name, n) == ("save_checkpoint", 1)
    )
    worker = make_worker(queue)
    model = store.add_model(ModelSpec("linear", SHAPE.in_size, SHAPE.out_size), seed=7)
    store.upload(model, *make_samples(24, seed=1))

    with running(worker):
        wait_until(lambda: store.row(model).state == TrainingState.CONVERGED, "converged")

    claims = [claimed for claimed, _ in store.lease_log if claimed == model]
    assert len(claims) == 2, "released and claimed again, without waiting for the lease to expire"
    assert queue.calls["release"] == 1
