"""Guessing keys over HTTP: wrong keys from one address are throttled, on a fake clock, while the
rightful user from another address keeps getting 200s."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from api_client import TestClient

from factories import SYSTEM_KEY
from sgt.api.app import create_app
from sgt.config import Settings
from sgt.services.context import ServiceContext, open_context
from sgt.services.throttle import AuthThrottle

ATTACKERS = 6
GUESSES_EACH = 30
# The rate six guessing clients got from one server before throttling (issue 13).
UNTHROTTLED_GUESSES_PER_SECOND = 57.0
ATTACKER = "203.0.113.7"
RIGHTFUL = "198.51.100.2"


class FakeClock:
    """Time that moves only when the test says so; safe to read and advance from threads."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(settings: Settings, clock: FakeClock) -> Iterator[ServiceContext]:
    opened = open_context(settings)
    opened.auth_throttle = AuthThrottle(
        burst_per_pair=settings.auth_failure_burst_per_key,
        burst_per_address=settings.auth_failure_burst_per_address,
        refill_seconds=settings.auth_failure_refill_seconds,
        clock=clock,
    )
    yield opened
    opened.close()


def served(settings: Settings, ctx: ServiceContext) -> TestClient:
    client = TestClient(create_app(settings, ctx))
    body = {"key": SYSTEM_KEY, "secret_id": "alice", "secret_key": "alice-right-key"}
    with client:
        assert client.post("/sgt/private/update_auth_token", json=body).status_code == 200
    return client


def read_models(client: TestClient, key: str, *, address: str) -> tuple[int, dict[str, str]]:
    answer = client.post(
        "/sgt/public/read_my_sgt_model",
        json={"secret_id": "alice", "secret_key": key},
        headers={"X-Forwarded-For": f"10.9.9.9, {address}"},
    )
    return answer.status_code, answer.json()


def test_guessing_is_slowed_tenfold_and_the_rightful_user_is_unaffected(
    settings: Settings, ctx: ServiceContext, clock: FakeClock
) -> None:
    settings = settings.model_copy(update={"trust_forwarded_for": True})
    client = served(settings, ctx)
    outcomes: Counter[str] = Counter()
    rightful_statuses: list[int] = []
    lock = threading.Lock()

    def guess(attacker: int) -> None:
        for n in range(GUESSES_EACH):
            status, body = read_models(client, f"guess-{attacker}-{n}", address=ATTACKER)
            assert (status, body["exception"]) == (400, "AuthException")
            outcome = "throttled" if "retry in" in body["message"] else "judged"
            with lock:
                outcomes[outcome] += 1
            clock.advance(1 / UNTHROTTLED_GUESSES_PER_SECOND)

    def use_the_service() -> None:
        for _ in range(20):
            status, _body = read_models(client, "alice-right-key", address=RIGHTFUL)
            rightful_statuses.append(status)

    with client:
        threads = [threading.Thread(target=guess, args=(n,)) for n in range(ATTACKERS)]
        threads.append(threading.Thread(target=use_the_service))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = client.get("/metrics").text

    attempts = ATTACKERS * GUESSES_EACH
    assert outcomes["judged"] + outcomes["throttled"] == attempts
    # Unthrottled, every guess was judged; now at most one in ten is.
    assert outcomes["judged"] * 10 <= attempts
    assert rightful_statuses == [200] * 20
    assert f"sgt_auth_throttled_total {outcomes['throttled']}" in metrics
    assert f"sgt_auth_failures_total {outcomes['judged']}" in metrics


def test_a_throttled_client_may_try_again_after_the_wait(
    settings: Settings, ctx: ServiceContext, clock: FakeClock
) -> None:
    settings = settings.model_copy(update={"trust_forwarded_for": True})
    client = served(settings, ctx)
    with client:
        for _ in range(settings.auth_failure_burst_per_key):
            assert "retry" not in read_models(client, "wrong", address=ATTACKER)[1]["message"]
        status, body = read_models(client, "wrong", address=ATTACKER)
        assert status == 400
        assert body == {
            "exception": "AuthException",
            "message": "too many failed authentications from your address: retry in 2 s",
        }
        clock.advance(settings.auth_failure_refill_seconds)
        assert read_models(client, "alice-right-key", address=ATTACKER)[0] == 200


def test_forwarded_for_is_ignored_unless_trusted(settings: Settings, ctx: ServiceContext) -> None:
    client = served(settings, ctx)  # trust_forwarded_for is off by default
    with client:
        messages = [
            read_models(client, "wrong", address=f"192.0.2.{n}")[1]["message"] for n in range(10)
        ]
    # Every guess came from the same peer, whatever the header claimed.
    assert sum("retry in" in message for message in messages) == 10 - (
        settings.auth_failure_burst_per_key
    )


def test_check_auth_token_is_throttled_too(settings: Settings, ctx: ServiceContext) -> None:
    client = served(settings, ctx)
    body = {"secret_id": "alice", "secret_key": "wrong"}
    with client:
        answers = [client.post("/sgt/public/check_auth_token", json=body).json() for _ in range(10)]
    assert answers == [False] * 10
    assert ctx.auth_throttle.throttled_total == 10 - settings.auth_failure_burst_per_key


def test_the_dashboard_sign_in_is_throttled_too(settings: Settings, ctx: ServiceContext) -> None:
    client = served(settings, ctx)
    form = {"secret_id": "alice", "secret_key": "wrong"}
    with client:
        statuses = [client.post("/dashboard/login", data=form).status_code for _ in range(8)]
    assert statuses == [401] * 8
    assert ctx.auth_throttle.failures_total == settings.auth_failure_burst_per_key
    assert ctx.auth_throttle.throttled_total == 8 - settings.auth_failure_burst_per_key
