"""The lease history (`lease_log`): every claim of a model by a trainer, for audits and tests.

A trainer holds a model from `claimed_at` until it releases it (`released_at`) or, if it never
does (it was killed, or lost the lease), until its last renewed expiry (`expires_at`): another
trainer can claim the model only after that, by the database clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from sqlalchemy import select
from sqlalchemy.orm import Session

from sgt.storage.tables import LeaseLogRow


@dataclass(frozen=True)
class Lease:
    """One claim: who held which model, and when (database clock, naive UTC)."""

    model_id: int
    worker: str
    claimed_at: datetime
    held_until: datetime | None  # None while it is still held and has no expiry recorded
    was_released: bool


def lease_history(session: Session) -> list[Lease]:
    """Every claim ever made, by model and then in claim order."""
    rows = session.execute(
        select(LeaseLogRow).order_by(LeaseLogRow.model_id, LeaseLogRow.claimed_at, LeaseLogRow.id)
    ).scalars()
    return [
        Lease(
            model_id=row.model_id,
            worker=row.worker,
            claimed_at=row.claimed_at,
            held_until=row.released_at or row.expires_at,
            was_released=row.released_at is not None,
        )
        for row in rows
    ]


def overlapping_leases(leases: list[Lease]) -> list[tuple[Lease, Lease]]:
    """Pairs of claims of one model where the second began before the first ended: empty when
    no model was ever held by two trainers at once."""
    by_model: dict[int, list[Lease]] = {}
    for lease in leases:
        by_model.setdefault(lease.model_id, []).append(lease)
    overlaps = []
    for claims in by_model.values():
        claims.sort(key=lambda lease: lease.claimed_at)
        for earlier, later in pairwise(claims):
            if earlier.held_until is None or later.claimed_at < earlier.held_until:
                overlaps.append((earlier, later))
    return overlaps
