"""A trainer's view of a storage outage: how long to wait before the next try, and one log line
when it begins and one when it ends (with its length), however many tries fail in between.

Waits grow exponentially from `first_seconds` to `max_seconds`, with jitter (each wait is drawn
between half and all of its ceiling), so trainers that lost the database together do not all
knock at the same instant when it comes back. Imports nothing from storage or ml.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

log = logging.getLogger("sgt.worker")

FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0


class Backoff:
    """Exponential back-off with a cap and jitter; `reset()` after a success."""

    def __init__(
        self,
        *,
        first_seconds: float = FIRST_RETRY_SECONDS,
        max_seconds: float = MAX_RETRY_SECONDS,
        random_fraction: Callable[[], float] = random.random,
    ) -> None:
        self.first_seconds = first_seconds
        self.max_seconds = max_seconds
        self._random_fraction = random_fraction
        self.failures = 0

    def next_delay(self) -> float:
        """The wait before the next try; each call counts one more failure."""
        ceiling = min(self.max_seconds, self.first_seconds * 2.0 ** min(self.failures, 32))
        self.failures += 1
        return ceiling * (0.5 + 0.5 * self._random_fraction())

    def reset(self) -> None:
        self.failures = 0


class Outage:
    """The current outage of `trainer`'s storage, if any."""

    def __init__(
        self,
        trainer: str,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trainer = trainer
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._began_at: float | None = None
        self.count = 0  # outages seen so far, for tests and logs

    @property
    def is_ongoing(self) -> bool:
        return self._began_at is not None

    def failed(self, reason: str) -> float:
        """A storage call failed with a transient error: log it if the outage is new; returns
        how long to wait before the next try."""
        delay = self.backoff.next_delay()
        if self._began_at is None:
            self._began_at = self._clock()
            self.count += 1
            log.warning(
                "trainer %s: storage unavailable (%s); retrying with back-off up to %.0f s",
                self.trainer,
                reason,
                self.backoff.max_seconds,
            )
        return delay

    def succeeded(self) -> None:
        """A storage call succeeded: log the end of an outage, with its length."""
        if self._began_at is None:
            return
        seconds = self._clock() - self._began_at
        self._began_at = None
        self.backoff.reset()
        log.warning("trainer %s: storage is back after %.1f s; carrying on", self.trainer, seconds)
