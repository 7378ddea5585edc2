"""`drive_run` with a scripted fake run, fake hooks and a fake clock: no database, no torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sgt.ml.base import Predictor, TrainingProgress, TrainingRun
from sgt.training.trainer import Heartbeat, Outcome, drive_run


class FakePredictor(Predictor):
    def __init__(self, version: int) -> None:
        self.version = version

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.full((len(inputs), 1), self.version, np.float32)

    def to_bytes(self) -> bytes:
        return str(self.version).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedRun(TrainingRun):
    """Each step advances the clock by `step_seconds`; improves on the steps listed."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        step_seconds: float = 1.0,
        improves: set[int] | None = None,
        converges_at: int | None = None,
    ) -> None:
        self.clock = clock
        self.step_seconds = step_seconds
        self.improves = improves if improves is not None else set(range(1, 10_000))
        self.converges_at = converges_at
        self.steps = 0
        self.best_version = 0

    def step(self) -> TrainingProgress:
        self.steps += 1
        self.clock.now += self.step_seconds
        improved = self.steps in self.improves
        if improved:
            self.best_version = self.steps
        return TrainingProgress(
            steps=self.steps,
            train_loss=1.0 / self.steps,
            val_loss=2.0 / self.steps,
            has_improved=improved,
            is_converged=self.steps == self.converges_at,
        )

    def best(self) -> Predictor:
        return FakePredictor(self.best_version)


@dataclass
class FakeHooks:
    beats: list[Heartbeat] = field(default_factory=list)  # answers, then CONTINUE
    checkpoint_answers: list[bool] = field(default_factory=list)  # answers, then True
    stop_after_checks: int | None = None
    heartbeats: list[int] = field(default_factory=list)
    checkpoints: list[tuple[int, int]] = field(default_factory=list)  # (best version, step)
    stop_checks: int = 0

    def heartbeat(self, progress: TrainingProgress) -> Heartbeat:
        self.heartbeats.append(progress.steps)
        return self.beats.pop(0) if self.beats else Heartbeat.CONTINUE

    def checkpoint(self, best: Predictor, progress: TrainingProgress) -> bool:
        assert isinstance(best, FakePredictor)
        self.checkpoints.append((best.version, progress.steps))
        return self.checkpoint_answers.pop(0) if self.checkpoint_answers else True

    def should_stop(self) -> bool:
        self.stop_checks += 1
        return self.stop_after_checks is not None and self.stop_checks > self.stop_after_checks


def drive(run: ScriptedRun, hooks: FakeHooks, clock: FakeClock, **timings: float):
    options = {"heartbeat_seconds": 3.0, "checkpoint_seconds": 5.0, "max_seconds": 1000.0}
    options.update(timings)
    return drive_run(run, hooks, clock=clock, **options)


def test_a_run_ends_when_it_converges() -> None:
    clock = FakeClock()
    run = ScriptedRun(clock, converges_at=4)
    result = drive(run, FakeHooks(), clock)
    assert result.outcome is Outcome.CONVERGED
    assert result.progress is not None and result.progress.steps == 4
    assert result.has_unsaved_improvement, "the caller writes the final checkpoint"


def test_improvements_are_checkpointed_on_the_clock() -> None:
    clock = FakeClock()
    hooks = FakeHooks()
    result = drive(ScriptedRun(clock, converges_at=12), hooks, clock)
    assert hooks.checkpoints == [(5, 5), (10, 10)]
    assert result.outcome is Outcome.CONVERGED and result.has_unsaved_improvement


def test_no_checkpoint_without_improvement() -> None:
    clock = FakeClock()
    hooks = FakeHooks()
    result = drive(ScriptedRun(clock, improves={1}, converges_at=20), hooks, clock)
    assert hooks.checkpoints == [(1, 5)]
    assert not result.has_unsaved_improvement


def test_heartbeats_follow_the_clock() -> None:
    clock = FakeClock()
    hooks = FakeHooks()
    drive(ScriptedRun(clock, improves=set(), converges_at=10), hooks, clock)
    assert hooks.heartbeats == [3, 6, 9]


def test_a_checkpoint_counts_as_a_heartbeat() -> None:
    clock = FakeClock()
    hooks = FakeHooks()
    drive(ScriptedRun(clock, converges_at=8), hooks, clock, heartbeat_seconds=5.0)
    assert hooks.checkpoints == [(5, 5)]
    assert hooks.heartbeats == [], "the checkpoint renewed the lease at step 5"


def test_a_lost_lease_at_a_heartbeat_ends_the_run_writing_nothing() -> None:
    clock = FakeClock()
    hooks = FakeHooks(beats=[Heartbeat.CONTINUE, Heartbeat.LEASE_LOST])
    run = ScriptedRun(clock, improves=set())
    result = drive(run, hooks, clock, checkpoint_seconds=1000.0)
    assert result.outcome is Outcome.LEASE_LOST
    assert not result.has_unsaved_improvement
    assert run.steps == 6, "no step after the lease was lost"


def test_a_refused_checkpoint_ends_the_run() -> None:
    clock = FakeClock()
    hooks = FakeHooks(checkpoint_answers=[False])
    run = ScriptedRun(clock)
    result = drive(run, hooks, clock)
    assert result.outcome is Outcome.LEASE_LOST
    assert not result.has_unsaved_improvement
    assert run.steps == 5 and hooks.checkpoints == [(5, 5)]


def test_new_data_ends_the_run_keeping_its_improvement() -> None:
    clock = FakeClock()
    hooks = FakeHooks(beats=[Heartbeat.NEW_DATA])
    result = drive(ScriptedRun(clock), hooks, clock, checkpoint_seconds=1000.0)
    assert result.outcome is Outcome.NEW_DATA
    assert result.progress is not None and result.progress.steps == 3
    assert result.has_unsaved_improvement


def test_a_stop_request_ends_the_run_before_the_next_step() -> None:
    clock = FakeClock()
    hooks = FakeHooks(stop_after_checks=2)
    run = ScriptedRun(clock)
    result = drive(run, hooks, clock)
    assert result.outcome is Outcome.STOPPED
    assert run.steps == 2
    assert result.has_unsaved_improvement


def test_a_stop_before_any_step_reports_no_progress() -> None:
    clock = FakeClock()
    result = drive(ScriptedRun(clock), FakeHooks(stop_after_checks=0), clock)
    assert (result.outcome, result.progress, result.has_unsaved_improvement) == (
        Outcome.STOPPED,
        None,
        False,
    )


def test_the_time_limit_ends_a_run_that_never_converges() -> None:
    clock = FakeClock()
    run = ScriptedRun(clock, step_seconds=2.0)
    result = drive(run, FakeHooks(), clock, max_seconds=20.0)
    assert result.outcome is Outcome.TIME_LIMIT
    assert run.steps == 10
