"""The trainers' heartbeats (`trainers`): who is training, where, on what, and since when.

Each trainer writes its own row only: `record_beat` inserts or refreshes it with the database
clock, `remove_trainer` deletes it on a clean stop. A killed trainer's row stops being beaten;
readers judge liveness by its age (`TrainerBeat.age_seconds`, database clock again) and
`prune_trainers` drops rows silent for longer than a bound. Nothing here locks a model row, so a
beat never waits on an upload or a delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sgt.storage.tables import ModelRow, TrainerRow


@dataclass(frozen=True)
class TrainerIdentity:
    """What a trainer says of itself once: its unique name, machine and process."""

    name: str
    host: str
    pid: int
    restarts: int = 0


@dataclass(frozen=True)
class TrainerBeat:
    """A trainer's row as read at `now` (database clock, naive UTC)."""

    name: str
    host: str
    pid: int
    started_at: datetime
    last_beat_at: datetime
    age_seconds: float  # since the last beat
    model_id: int | None
    model_name: str | None  # "app_name/name" of the model it trains, if it still exists
    restarts: int


def record_beat(
    session: Session, *, trainer: TrainerIdentity, model_id: int | None, now: datetime
) -> None:
    """Insert or refresh `trainer`'s row: beaten `now`, training `model_id` (None: idle)."""
    row = session.get(TrainerRow, trainer.name)
    if row is None:
        session.add(
            TrainerRow(
                name=trainer.name,
                host=trainer.host,
                pid=trainer.pid,
                started_at=now,
                last_beat_at=now,
                model_id=model_id,
                restarts=trainer.restarts,
            )
        )
        return
    row.last_beat_at = now
    row.model_id = model_id


def remove_trainer(session: Session, name: str) -> None:
    session.execute(delete(TrainerRow).where(TrainerRow.name == name))


def prune_trainers(session: Session, *, now: datetime, silent_seconds: float) -> int:
    """Delete the rows not beaten for `silent_seconds` (killed trainers); returns how many."""
    cutoff = now - timedelta(seconds=silent_seconds)
    result = session.execute(delete(TrainerRow).where(TrainerRow.last_beat_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def list_trainers(session: Session, *, now: datetime) -> list[TrainerBeat]:
    """Every trainer row, the most recently beaten first."""
    rows = session.execute(
        select(TrainerRow, ModelRow.app_name, ModelRow.name)
        .outerjoin(ModelRow, ModelRow.id == TrainerRow.model_id)
        .order_by(TrainerRow.last_beat_at.desc(), TrainerRow.name)
    ).all()
    return [
        TrainerBeat(
            name=row.name,
            host=row.host,
            pid=row.pid,
            started_at=row.started_at,
            last_beat_at=row.last_beat_at,
            age_seconds=max(0.0, (now - row.last_beat_at).total_seconds()),
            model_id=row.model_id,
            model_name=None if app_name is None else f"{app_name}/{model_name}",
            restarts=row.restarts,
        )
        for row, app_name, model_name in rows
    ]
