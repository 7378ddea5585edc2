"""The versions extension over HTTP: list_sgt_model_versions and rollback_sgt_model, their
answers and their errors, with a trainer's runs played through the real `TrainingQueue`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from api_client import Post, TestClient

from sgt.ml.base import ModelShape
from sgt.ml.registry import get_model_type
from sgt.storage.queue import Progress, TrainingQueue

SHAPE = ModelShape(2, 1)
DATA = [[0.5, 1.0], [3.0, -2.0]]


@pytest.fixture
def model(post: Post, credentials: dict[str, str]) -> dict[str, Any]:
    body = {**credentials, "app_name": "maya", "name": "arm"}
    created = {**body, "model_type": "std", "in_size": 2, "out_size": 1}
    assert post("/public/create_sgt_model", created).status_code == 200
    return body


def weights_of(seed: int) -> bytes:
    return get_model_type("std").initial(SHAPE, seed=seed).to_bytes()


def converge(client: TestClient, post: Post, model: dict[str, Any], weights: bytes) -> None:
    """Upload two pairs, then play one trainer run that converges on `weights`."""
    train_data = [[row, [1.0]] for row in DATA]
    uploaded = post("/public/upload_sgt_model_train_data", {**model, "train_data": train_data})
    assert uploaded.status_code == 200
    trainer = TrainingQueue(client.app.state.ctx.db, worker_name="test", lease_seconds=30.0)
    claim = trainer.claim_next()
    data = None if claim is None else trainer.load(claim)
    assert claim is not None and data is not None
    progress = Progress(steps=5, train_loss=0.5, val_loss=0.125)
    assert trainer.save_checkpoint(
        claim,
        model_type="std",
        weights=weights,
        trained_sample_count=len(data.inputs),
        progress=progress,
    )
    assert trainer.finish(claim, trained_data_version=claim.data_version, progress=progress)


def run(post: Post, model: dict[str, Any]) -> np.ndarray:
    response = post("/public/run_sgt_model", {**model, "data": DATA})
    assert response.status_code == 200
    return np.array(response.json())


def test_an_untrained_model_has_no_versions(post: Post, model: dict[str, Any]) -> None:
    response = post("/public/list_sgt_model_versions", model)
    assert (response.status_code, response.json()) == (200, [])


def test_versions_are_listed_newest_first_and_rollback_serves_one_at_once(
    client: TestClient, post: Post, model: dict[str, Any]
) -> None:
    converge(client, post, model, weights_of(1))
    first = run(post, model)
    converge(client, post, model, weights_of(2))
    second = run(post, model)
    assert not np.allclose(first, second)

    listed = post("/public/list_sgt_model_versions", model).json()
    assert [(v["version"], v["sample_count"], v["served"]) for v in listed] == [
        (2, 4, True),
        (1, 2, False),
    ]
    assert listed[0]["val_loss"] == 0.125
    assert len(listed[0]["created_at"]) == len("2026-01-02 03:04:05")

    response = post("/public/rollback_sgt_model", {**model, "version": 1})
    assert (response.status_code, response.json()) == (200, None)
    # The process had version 2 in memory; the rolled-back weights are served at once.
    np.testing.assert_array_equal(run(post, model), first)
    served = [v["served"] for v in post("/public/list_sgt_model_versions", model).json()]
    assert served == [False, True]


@pytest.mark.parametrize(
    ("path", "extra", "exception"),
    [
        ("/public/rollback_sgt_model", {"version": 7}, "FindModelException"),
        ("/public/rollback_sgt_model", {"version": "1"}, "RequestException"),
        ("/public/rollback_sgt_model", {}, "RequestException"),
        ("/public/rollback_sgt_model", {"name": "leg", "version": 1}, "FindModelException"),
        ("/public/list_sgt_model_versions", {"name": "leg"}, "FindModelException"),
        ("/public/list_sgt_model_versions", {"secret_key": "wrong"}, "AuthException"),
        ("/public/rollback_sgt_model", {"secret_key": "wrong", "version": 1}, "AuthException"),
    ],
)
def test_failures_are_400_with_the_contract_names(
    client: TestClient,
    post: Post,
    model: dict[str, Any],
    path: str,
    extra: dict[str, Any],
    exception: str,
) -> None:
    converge(client, post, model, weights_of(1))
    response = post(path, {**model, **extra})
    assert response.status_code == 400
    assert set(response.json()) == {"exception", "message"}
    assert response.json()["exception"] == exception
