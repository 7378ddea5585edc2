"""How often a trainer renews, checkpoints, polls and beats, and the name it goes by: read once
from the settings. Imports only the configuration and the standard library."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass

from sgt.config import Settings

log = logging.getLogger("sgt.worker")


@dataclass(frozen=True)
class WorkerTimings:
    lease_seconds: float
    heartbeat_seconds: float
    checkpoint_seconds: float
    poll_seconds: float
    max_train_seconds: float

    @property
    def idle_seconds(self) -> float:
        """Longest sleep of an idle worker: `poll_seconds` on SQLite. On PostgreSQL NOTIFY and
        lease expiries wake it; this bound only guards against a lost notification."""
        return max(self.poll_seconds, self.lease_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerTimings:
        """The configured timings; a heartbeat too slow for the lease is shortened (with a
        warning) to a third of it, so one late renewal never loses the lease."""
        heartbeat = settings.heartbeat_seconds
        if heartbeat > settings.lease_seconds / 3:
            heartbeat = settings.lease_seconds / 3
            log.warning(
                "heartbeat of %.3g s is too slow for a lease of %.3g s; renewing every %.3g s",
                settings.heartbeat_seconds,
                settings.lease_seconds,
                heartbeat,
            )
        return cls(
            settings.lease_seconds,
            heartbeat,
            settings.checkpoint_seconds,
            settings.poll_seconds,
            settings.max_train_seconds,
        )


def trainer_name() -> str:
    """A name no other trainer has: host, process and a random part (threads share a pid)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
