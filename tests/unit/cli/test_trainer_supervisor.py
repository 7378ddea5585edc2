"""`sgt serve`'s supervisor of its embedded trainer: a trainer that exits is started again, with
the count of restarts passed on (it reaches the trainer's row and /metrics), until `stop()`."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest

from sgt.cli.processes import TrainerSupervisor
from sgt.config import Settings


class Trainers:
    """Starts stand-in trainers: the first `crashes` exit with status 3 at once, the next ones
    run until they are stopped (SIGTERM)."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.started: list[int] = []  # the restart count each start was given
        self.running = threading.Event()

    def __call__(self, restarts: int) -> subprocess.Popen[bytes]:
        self.started.append(restarts)
        if len(self.started) <= self.crashes:
            return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        self.running.set()
        return process


def test_a_trainer_that_exits_is_restarted_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    trainers = Trainers(crashes=3)
    supervisor = TrainerSupervisor(
        Settings(system_key="k"), start_process=trainers, first_delay_seconds=0.01
    )
    with caplog.at_level(logging.ERROR, logger="sgt.serve"):
        supervisor.start()
        try:
            assert trainers.running.wait(30), "the supervisor gave up restarting"
            live = supervisor.pid
        finally:
            supervisor.stop()
    assert trainers.started == [0, 1, 2, 3], "each start is told how often it was restarted"
    assert supervisor.restarts == 3
    restarts = [record.getMessage() for record in caplog.records]
    assert len(restarts) == 3 and all("exited with 3" in text for text in restarts)
    assert live is not None
    assert len(trainers.started) == 4, "a trainer stopped by stop() is not restarted"
