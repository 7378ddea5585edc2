"""/readyz and the trainers in /metrics: ready while a trainer beats (with the embedded trainer
on), 503 naming the trainer once none has beaten for `trainer_stale_seconds`, and /healthz
unchanged."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from api_client import TestClient

from sgt.api.app import create_app
from sgt.api.routes import health
from sgt.config import Settings
from sgt.storage.queue import TrainingQueue
from sgt.storage.tables import TrainerRow


@pytest.fixture
def long_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """This API process started long ago: the grace for a first beat is over."""
    monkeypatch.setattr(health, "_PROCESS_STARTED", time.monotonic() - 3600)


def beat(client: TestClient, name: str = "t1", *, seconds_ago: float = 0.0) -> None:
    db = client.app.state.ctx.db  # type: ignore[attr-defined]
    TrainingQueue(db, worker_name=name, lease_seconds=30.0, restarts=2).beat(None)
    with db.write() as session:
        row = session.get(TrainerRow, name)
        assert row is not None
        row.last_beat_at -= timedelta(seconds=seconds_ago)


@pytest.mark.usefixtures("long_running")
def test_readyz_needs_a_beating_trainer_when_the_trainer_is_embedded(settings: Settings) -> None:
    app_settings = settings.model_copy(update={"trainer_stale_seconds": 30.0})
    with TestClient(create_app(app_settings)) as client:
        missing = client.get("/readyz")
        assert (missing.status_code, missing.json()["reason"]) == (503, "trainer")
        assert client.get("/healthz").json() == {"status": "ok"}

        beat(client)
        assert (client.get("/readyz").status_code, client.get("/readyz").json()) == (
            200,
            {"status": "ok"},
        )
        metrics = client.get("/metrics").text
        assert "sgt_trainers_alive 1\n" in metrics
        assert 'sgt_trainer_restarts{trainer="t1"} 2\n' in metrics

        beat(client, seconds_ago=31)
        assert client.get("/readyz").status_code == 503
        assert "sgt_trainers_alive 0\n" in client.get("/metrics").text


@pytest.mark.usefixtures("long_running")
def test_readyz_without_an_embedded_trainer_checks_the_database_only(settings: Settings) -> None:
    app_settings = settings.model_copy(update={"embedded_trainer": False})
    with TestClient(create_app(app_settings)) as client:
        assert client.get("/readyz").status_code == 200


def test_a_new_api_process_is_ready_while_its_trainer_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "_PROCESS_STARTED", time.monotonic())
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
