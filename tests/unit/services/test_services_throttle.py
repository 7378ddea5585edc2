"""The failed-authentication throttle, on a fake clock, and through `authenticate`."""

from __future__ import annotations

import pytest

from factories import make_user
from sgt.errors import AuthFailed, AuthThrottled
from sgt.services import users
from sgt.services.context import ServiceContext
from sgt.services.throttle import AuthThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_throttle(clock: FakeClock, **overrides: int) -> AuthThrottle:
    options = {"burst_per_pair": 3, "burst_per_address": 5, "max_entries": 100, **overrides}
    return AuthThrottle(refill_seconds=2.0, clock=clock, **options)


def attempts_allowed(throttle: AuthThrottle, *, address: str, secret_id: str, tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            throttle.take_attempt(address=address, secret_id=secret_id)
        except AuthThrottled:
            continue
        allowed += 1
    return allowed


def test_a_pair_gets_its_burst_then_one_check_per_refill() -> None:
    clock = FakeClock()
    throttle = make_throttle(clock)
    assert attempts_allowed(throttle, address="a", secret_id="alice", tries=10) == 3
    clock.now += 2.0
    assert attempts_allowed(throttle, address="a", secret_id="alice", tries=10) == 1
    assert throttle.throttled_total == 16


def test_the_refusal_says_how_long_to_wait_and_the_wait_is_bounded() -> None:
    clock = FakeClock()
    throttle = make_throttle(clock)
    attempts_allowed(throttle, address="a", secret_id="alice", tries=100)
    with pytest.raises(AuthThrottled, match=r"retry in 2 s"):
        throttle.take_attempt(address="a", secret_id="alice")
    clock.now += 1.5
    with pytest.raises(AuthThrottled, match=r"retry in 1 s"):
        throttle.take_attempt(address="a", secret_id="alice")


def test_the_penalty_decays_completely() -> None:
    clock = FakeClock()
    throttle = make_throttle(clock)
    attempts_allowed(throttle, address="a", secret_id="alice", tries=100)
    clock.now += 3600
    assert attempts_allowed(throttle, address="a", secret_id="alice", tries=10) == 3


def test_an_address_is_throttled_over_every_secret_id() -> None:
    throttle = make_throttle(FakeClock())
    allowed = sum(
        attempts_allowed(throttle, address="a", secret_id=f"user-{n}", tries=1) for n in range(20)
    )
    assert allowed == 5


def test_another_address_is_never_affected() -> None:
    throttle = make_throttle(FakeClock())
    attempts_allowed(throttle, address="attacker", secret_id="alice", tries=100)
    assert attempts_allowed(throttle, address="home", secret_id="alice", tries=3) == 3


def test_a_right_key_gives_its_check_back() -> None:
    throttle = make_throttle(FakeClock())
    for _ in range(10):
        throttle.take_attempt(address="a", secret_id="alice")
        throttle.give_back_attempt(address="a", secret_id="alice")
    assert attempts_allowed(throttle, address="a", secret_id="alice", tries=10) == 3


def test_memory_is_bounded() -> None:
    throttle = make_throttle(FakeClock(), max_entries=50)
    for n in range(1000):
        attempts_allowed(throttle, address=f"10.0.{n // 256}.{n % 256}", secret_id="x", tries=1)
    assert throttle.tracked_keys <= 100


def test_authenticate_throttles_wrong_keys_from_an_address(ctx: ServiceContext) -> None:
    clock = FakeClock()
    ctx.auth_throttle = make_throttle(clock)
    make_user(ctx, secret_id="alice", secret_key="right")
    outcomes = []
    for _ in range(6):
        try:
            users.authenticate(ctx, "alice", "wrong", address="203.0.113.9")
        except AuthThrottled:
            outcomes.append("throttled")
        except AuthFailed:
            outcomes.append("wrong")
    assert outcomes == ["wrong"] * 3 + ["throttled"] * 3
    assert ctx.auth_throttle.failures_total == 3
    # The rightful user, from another address; and the same key once remembered, from any.
    assert users.authenticate(ctx, "alice", "right", address="198.51.100.1").secret_id == "alice"
    assert users.authenticate(ctx, "alice", "right", address="203.0.113.9").secret_id == "alice"


def test_without_an_address_nothing_is_throttled(ctx: ServiceContext) -> None:
    ctx.auth_throttle = make_throttle(FakeClock())
    make_user(ctx, secret_id="alice", secret_key="right")
    for _ in range(5):
        with pytest.raises(AuthFailed) as raised:
            users.authenticate(ctx, "alice", "wrong")
        assert not isinstance(raised.value, AuthThrottled)
