"""Small runs served on the event loop never block it: a checkpoint load or a wait for a pooled
connection is handed to a thread, and the answer is the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from api_client import TestClient

from factories import SYSTEM_KEY
from sgt.api.app import create_app
from sgt.config import Settings
from sgt.ml.base import Predictor
from sgt.ml.cache import ModelCache
from sgt.services.context import ServiceContext, open_context

CREDENTIALS = {"secret_id": "alice", "secret_key": "alice-secret-key"}


def is_on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RecordingCache(ModelCache):
    """A model cache that notes, for each load that completed, whether it ran on the event
    loop's thread (a load refused on the loop raises before reading anything)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity=capacity, device="cpu")
        self.loads_on_loop: list[bool] = []

    def get(self, model_id: int, version: int, load: Callable[[], Predictor]) -> Predictor:
        def recorded_load() -> Predictor:
            predictor = load()
            self.loads_on_loop.append(is_on_event_loop())
            return predictor

        return super().get(model_id, version, recorded_load)


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    opened = open_context(settings)
    opened.model_cache = RecordingCache(capacity=8)
    yield opened
    opened.close()


@pytest.fixture
def client(settings: Settings, ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx)) as test_client:
        body = {"key": SYSTEM_KEY, **CREDENTIALS}
        assert test_client.post("/sgt/private/update_auth_token", json=body).status_code == 200
        for name in ("first", "second"):
            model = {**CREDENTIALS, "app_name": "maya", "name": name, "model_type": "std"}
            created = {**model, "in_size": 2, "out_size": 1, "is_public": False}
            assert test_client.post("/sgt/public/create_sgt_model", json=created).is_success
        yield test_client


def run(client: TestClient, name: str) -> list[list[float]]:
    body = {**CREDENTIALS, "app_name": "maya", "name": name, "data": [[0.5, 1.0]]}
    answer = client.post("/sgt/public/run_sgt_model", json=body)
    assert answer.status_code == 200
    return answer.json()


def test_a_cache_miss_on_the_event_loop_loads_in_a_thread(
    client: TestClient, ctx: ServiceContext
) -> None:
    cache = ctx.model_cache
    assert isinstance(cache, RecordingCache)
    run(client, "first")  # verifies the key (scrypt, in a thread): later runs may stay on the loop
    first = run(client, "second")  # small, credentials remembered, model not loaded yet
    again = run(client, "second")  # loaded now: served on the loop from the cache
    assert cache.loads_on_loop == [False, False]
    assert len(first) == 1 and first == again


def test_no_read_waits_for_a_connection_on_the_event_loop(
    client: TestClient, ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(client, "first")
    reads_on_loop: list[bool] = []

    def recorded(real_read: Callable[[], AbstractContextManager[Any]]) -> Callable[[], Any]:
        @contextmanager
        def recorded_read() -> Iterator[Any]:
            reads_on_loop.append(is_on_event_loop())
            with real_read() as reader:
                yield reader

        return recorded_read

    # Both kinds of read: a session, and the plain connection of a request's key and model.
    monkeypatch.setattr(ctx.db, "read", recorded(ctx.db.read))
    monkeypatch.setattr(ctx.db, "quick_read", recorded(ctx.db.quick_read))
    monkeypatch.setattr(ctx.db, "has_idle_connection", lambda: False)  # a busy pool
    assert len(run(client, "first")) == 1
    assert reads_on_loop and not any(reads_on_loop)

    # With a connection idle, the same request is read on the loop (it needs no thread).
    monkeypatch.setattr(ctx.db, "has_idle_connection", lambda: True)
    reads_on_loop.clear()
    run(client, "first")
    assert reads_on_loop and all(reads_on_loop)
