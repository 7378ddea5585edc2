"""What the database says about the whole service, for `/metrics`: read at each scrape.

A gauge that needs the database is added here, as one more field of `ServiceGauges` read in
`read_gauges` (trainers alive, their restarts, ... will join the counts below).
"""

from __future__ import annotations

from dataclasses import dataclass

from sgt.domain.training import TrainingState
from sgt.services.context import ServiceContext
from sgt.storage import stats as stats_store


@dataclass(frozen=True)
class ServiceGauges:
    """Counts read in one transaction."""

    models_by_state: dict[TrainingState, int]
    samples_stored: int

    @property
    def queue_depth(self) -> int:
        """Models waiting for a trainer."""
        return self.models_by_state[TrainingState.QUEUED]


def read_gauges(ctx: ServiceContext) -> ServiceGauges:
    """The database-wide counts; raises StorageError when the database does not answer."""
    with ctx.db.read() as session:
        return ServiceGauges(
            models_by_state=stats_store.count_models_by_training_state(session),
            samples_stored=stats_store.count_samples_stored(session),
        )
