"""`sgt serve --no-trainer` beside a separate `sgt worker` on the same data directory: the worker
alone trains the server's models, and SIGTERM hands a model in training back to the queue."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_server import FAST_TIMINGS, SgtServer, clean_environment, register_user

from factories import make_pairs

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def trainerless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SgtServer]:
    root: Path = tmp_path_factory.mktemp("worker")
    running = SgtServer(root / "data", system_key="worker-key", SGT_EMBEDDED_TRAINER="false")
    running.start()
    yield running
    running.close()


def start_worker(server: SgtServer) -> subprocess.Popen[bytes]:
    env = clean_environment(
        SGT_DATA_DIR=str(server.data_dir), SGT_SYSTEM_KEY="worker-key", **FAST_TIMINGS
    )
    with (server.data_dir.parent / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sgt", "worker"],
            env=env,
            cwd=server.data_dir.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def stop_worker(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(30)


def test_serve_without_trainer_starts_no_child(trainerless: SgtServer) -> None:
    assert trainerless.child_pids() == []


def test_a_separate_worker_trains_and_stops_cleanly(trainerless: SgtServer) -> None:
    carol = register_user(trainerless, "carol")
    carol.create("m", model_type="mlp")
    carol.upload("m", make_pairs(200, seed=4))
    assert carol.status("m")["state"] == "queued"
    worker = start_worker(trainerless)
    try:
        carol.wait_for_state("m", "training", deadline_seconds=60)
        # SIGTERM while it trains: the model goes back to the queue for the next trainer.
        assert stop_worker(worker) == 0
        status = carol.status("m")
        assert status["state"] == "queued"
        worker = start_worker(trainerless)
        status = carol.wait_for_state("m", "converged", deadline_seconds=120)
        assert status["sample_count"] == status["trained_sample_count"] == 200
        assert status["steps"] > 0
    finally:
        if worker.poll() is None:
            stop_worker(worker)
