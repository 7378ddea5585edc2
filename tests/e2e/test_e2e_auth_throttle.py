"""A real `sgt serve` at its default throttle: wrong keys from one address are refused with a
time to wait, counted in /metrics, and the right key (once seen) still works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_server import SgtServer, assert_error, register_user

pytestmark = pytest.mark.e2e

DEFAULT_BURST_PER_KEY = 5


@pytest.fixture(scope="module")
def throttled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SgtServer]:
    root: Path = tmp_path_factory.mktemp("e2e-throttle")
    running = SgtServer(root / "data", system_key="e2e-throttle-key")
    running.start()
    try:
        yield running
    finally:
        running.close()


def test_wrong_keys_are_throttled_and_counted(throttled_server: SgtServer) -> None:
    user = register_user(throttled_server, "victim")
    assert user.ok("/public/read_my_sgt_model") == []  # the right key, seen once
    wrong = {"secret_id": user.secret_id, "secret_key": "guess"}
    messages = [
        assert_error(throttled_server.post("/public/read_my_sgt_model", wrong), "AuthException")
        for _ in range(DEFAULT_BURST_PER_KEY + 3)
    ]
    assert ["retry in" in message for message in messages] == [False] * DEFAULT_BURST_PER_KEY + [
        True
    ] * 3
    assert user.ok("/public/read_my_sgt_model") == []  # remembered: never throttled
    metrics = throttled_server.get("/metrics").text
    assert f"sgt_auth_failures_total {DEFAULT_BURST_PER_KEY}" in metrics
    assert "sgt_auth_throttled_total 3" in metrics
