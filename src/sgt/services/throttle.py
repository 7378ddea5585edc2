"""Throttling of failed authentications, per client address and per (secret_id, address) pair.

Each key has a token bucket: `burst` checks of a key that is not remembered as right may run at
once, and one more is allowed every `refill_seconds`. A check takes a token from the address's
bucket and from the pair's before its scrypt runs (so concurrent guesses cannot overdraw it);
a right key gives both back. The penalty is bounded (a throttled client waits at most
`refill_seconds` for its next try) and decays by itself. There is no bucket per secret_id alone:
a rightful user presenting the right key from another address is never refused, whatever an
attacker does elsewhere. Memory is bounded: each table is an LRU of `max_entries` keys.

State is per process (docs/security.md). Only the standard library; no storage, no HTTP.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass

from sgt.errors import AuthThrottled

MAX_ENTRIES = 10_000

# The address of the client whose request this is, set by the API around each request so that
# every credential check it causes (a handler's too) is throttled; None outside a request.
CLIENT_ADDRESS: ContextVar[str | None] = ContextVar("sgt_client_address", default=None)


@dataclass
class _Bucket:
    tokens: float
    updated_at: float


class _BucketTable:
    """Token buckets by key, the least recently used forgotten first."""

    def __init__(self, *, burst: int, refill_seconds: float, max_entries: int) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_entries = max_entries
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    def refilled(self, key: Hashable, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed / self.refill_seconds)
            bucket.updated_at = now
        return bucket

    def seconds_until_token(self, bucket: _Bucket) -> float:
        return max(0.0, (1.0 - bucket.tokens) * self.refill_seconds)

    def give_back(self, key: Hashable) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.burst), bucket.tokens + 1.0)

    def __len__(self) -> int:
        return len(self._buckets)


class AuthThrottle:
    """Decides whether a key check may run; counts failures and refusals. Thread-safe."""

    def __init__(
        self,
        *,
        burst_per_pair: int,
        burst_per_address: int,
        refill_seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pairs = _BucketTable(
            burst=burst_per_pair, refill_seconds=refill_seconds, max_entries=max_entries
        )
        self._addresses = _BucketTable(
            burst=burst_per_address, refill_seconds=refill_seconds, max_entries=max_entries
        )
        self._clock = clock
        self._lock = threading.Lock()
        self.failures_total = 0
        self.throttled_total = 0

    def take_attempt(self, *, address: str, secret_id: str) -> None:
        """Take one check from both buckets; raises AuthThrottled (saying how long to wait)
        when either is empty, taking nothing."""
        pair = (secret_id, address)
        with self._lock:
            now = self._clock()
            by_address = self._addresses.refilled(address, now)
            by_pair = self._pairs.refilled(pair, now)
            if by_address.tokens >= 1.0 and by_pair.tokens >= 1.0:
                by_address.tokens -= 1.0
                by_pair.tokens -= 1.0
                return
            self.throttled_total += 1
            wait = max(
                self._addresses.seconds_until_token(by_address),
                self._pairs.seconds_until_token(by_pair),
            )
        raise AuthThrottled(
            "too many failed authentications from your address: "
            f"retry in {max(1, math.ceil(wait))} s"
        )

    def give_back_attempt(self, *, address: str, secret_id: str) -> None:
        """The key was right: the check taken for it costs nothing."""
        with self._lock:
            self._addresses.give_back(address)
            self._pairs.give_back((secret_id, address))

    def count_failure(self) -> None:
        with self._lock:
            self.failures_total += 1

    @property
    def tracked_keys(self) -> int:
        """Buckets held in memory, both tables together (at most twice `max_entries`)."""
        with self._lock:
            return len(self._addresses) + len(self._pairs)
