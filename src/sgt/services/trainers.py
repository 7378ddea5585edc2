"""Trainers as operators see them: who beats, how recently, on which model, restarted how often.

Read by `/readyz`, `/metrics` and `sgt admin trainers`; the rows are written by the trainers
themselves (`sgt.storage.queue.TrainingQueue.beat`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sgt.services.context import ServiceContext
from sgt.storage import trainers as trainer_store
from sgt.storage.trainers import TrainerBeat

__all__ = ["TrainerBeat", "TrainerCensus", "list_trainers", "trainer_census"]


def list_trainers(ctx: ServiceContext) -> list[TrainerBeat]:
    """Every trainer row (live or stale), the most recently beaten first, aged by the database
    clock."""
    with ctx.db.read() as session:
        return trainer_store.list_trainers(session, now=ctx.db.now(session))


@dataclass(frozen=True)
class TrainerCensus:
    """The trainers beaten within a bound, and their supervisors' restart counts."""

    alive: list[TrainerBeat]
    freshest_age_seconds: float | None  # of the most recent beat of any trainer; None: no row

    @property
    def restarts(self) -> int:
        return sum(trainer.restarts for trainer in self.alive)


def trainer_census(ctx: ServiceContext, *, stale_seconds: float) -> TrainerCensus:
    """Which trainers beat within `stale_seconds`; raises StorageError when the database is
    unreachable."""
    listed = list_trainers(ctx)
    return TrainerCensus(
        alive=[trainer for trainer in listed if trainer.age_seconds <= stale_seconds],
        freshest_age_seconds=listed[0].age_seconds if listed else None,
    )
