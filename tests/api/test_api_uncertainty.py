"""`return_std` on run_sgt_model and /public/suggest_sgt_model_samples over HTTP
(docs/uncertainty.md): the documented shapes, JSON and binary alike, and the contract's errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from api_client import TestClient
from test_api_shapes import answer_schema, mismatches

from factories import make_model, make_samples, make_user
from sgt.api.app import create_app
from sgt.config import Settings
from sgt.ml.base import ModelShape
from sgt.ml.registry import get_model_type
from sgt.ml.types.std_calibration import calibrate_single
from sgt.services.context import ServiceContext
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import models as model_store

RUN = "/sgt/public/run_sgt_model"
SUGGEST = "/sgt/public/suggest_sgt_model_samples"
KEY = "key-of-the-user"


@pytest.fixture
def client(settings: Settings, ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx)) as test_client:
        yield test_client


def trained_gp_checkpoint() -> bytes:
    """A calibrated 3 -> 2 GP, as `std` serves one alone."""
    inputs, targets = make_samples(40)
    run = get_model_type("gp").start_training(
        ModelShape(3, 2), inputs, targets, start=None, seed=0, device="cpu"
    )
    while not run.step().is_converged:
        pass
    predictor = run.best()
    residuals = run.validation_residuals()
    assert residuals is not None
    predictor.calibration = calibrate_single(
        predictor,
        residuals,
        inputs=inputs,
        targets=targets,
        target_scale=targets.std(axis=0).astype(np.float64),
    )
    return predictor.to_bytes()


@pytest.fixture(scope="module")
def gp_weights() -> bytes:
    return trained_gp_checkpoint()


@pytest.fixture
def model(ctx: ServiceContext, gp_weights: bytes) -> dict[str, Any]:
    """Credentials and names of a 3 -> 2 model holding a calibrated GP checkpoint."""
    user = make_user(ctx, secret_key=KEY)
    name = make_model(ctx, user, in_size=3, out_size=2)
    with ctx.db.write() as session:
        found = model_store.find_model(session, owner_id=user.id, app_name="app", name=name)
        assert found is not None
        checkpoint_store.write_checkpoint(
            session,
            model_id=found.id,
            model_type="gp",
            weights=gp_weights,
            trained_sample_count=40,
            now=ctx.db.now(session),
        )
    return {"secret_id": user.secret_id, "secret_key": KEY, "app_name": "app", "name": name}


def decode(value: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(value["base64"])
    return np.frombuffer(raw, dtype="<f4").reshape(value["shape"])


def encode(matrix: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(matrix, dtype="<f4")
    return {
        "dtype": "float32",
        "shape": list(data.shape),
        "base64": base64.b64encode(data.tobytes()).decode(),
    }


PROBE = [[0.0, 0.0, 0.0], [0.5, -0.5, 0.2], [9.0, 0.0, 0.0]]


def test_return_std_answers_mean_std_and_out_of_range(
    client: TestClient, model: dict[str, Any]
) -> None:
    plain = client.post(RUN, json={**model, "data": PROBE})
    answer = client.post(RUN, json={**model, "data": PROBE, "return_std": True}).json()
    assert set(answer) == {"mean", "std", "out_of_range"}
    assert answer["mean"] == plain.json()
    assert np.array(answer["std"]).shape == (3, 2) and np.all(np.array(answer["std"]) > 0)
    assert answer["out_of_range"] == [False, False, True]
    # The row far outside the training inputs is also the least certain.
    assert min(answer["std"][2]) > max(answer["std"][0])


def test_without_return_std_the_answer_is_byte_identical(
    client: TestClient, model: dict[str, Any]
) -> None:
    plain = client.post(RUN, json={**model, "data": PROBE}).content
    explicit = client.post(RUN, json={**model, "data": PROBE, "return_std": False}).content
    assert plain == explicit and orjson.loads(plain)[0][0] is not None


def test_the_binary_answer_carries_mean_and_std_as_arrays(
    client: TestClient, model: dict[str, Any]
) -> None:
    body = {**model, "data": encode(np.array(PROBE)), "return_std": True}
    binary = client.post(RUN, json={**body, "response_format": "binary"}).json()
    plain = client.post(RUN, json=body).json()
    assert np.array_equal(decode(binary["mean"]), np.array(plain["mean"], dtype=np.float32))
    assert np.array_equal(decode(binary["std"]), np.array(plain["std"], dtype=np.float32))
    assert binary["out_of_range"] == plain["out_of_range"]


def test_empty_data_answers_empty_lists(client: TestClient, model: dict[str, Any]) -> None:
    answer = client.post(RUN, json={**model, "data": [], "return_std": True}).json()
    assert answer == {"mean": [], "std": [], "out_of_range": []}


def test_an_untrained_model_answers_zero_std(client: TestClient, ctx: ServiceContext) -> None:
    user = make_user(ctx, secret_key=KEY)
    name = make_model(ctx, user, in_size=3, out_size=2)
    body = {"secret_id": user.secret_id, "secret_key": KEY, "app_name": "app", "name": name}
    answer = client.post(RUN, json={**body, "data": PROBE, "return_std": True}).json()
    assert np.array(answer["std"]).shape == (3, 2)
    assert answer["out_of_range"] == [False, False, False]


def test_the_answers_match_the_documented_schemas(
    client: TestClient, model: dict[str, Any]
) -> None:
    document = client.get("/openapi.json").json()
    run_schema = answer_schema(document, "/public/run_sgt_model")
    for extra in ({}, {"response_format": "binary"}):
        answer = client.post(RUN, json={**model, "data": PROBE, "return_std": True, **extra})
        assert mismatches(document, run_schema, answer.json()) == [], extra
    suggested = client.post(SUGGEST, json={**model, "candidates": PROBE, "k": 2}).json()
    assert mismatches(document, answer_schema(document, SUGGEST[4:]), suggested) == []
    properties = document["components"]["schemas"]["RunModelRequest"]["properties"]
    assert properties["return_std"]["type"] == "boolean"


def test_suggest_answers_k_distinct_indices(client: TestClient, model: dict[str, Any]) -> None:
    candidates = np.random.default_rng(0).uniform(-1.5, 1.5, size=(60, 3))
    chosen = client.post(SUGGEST, json={**model, "candidates": candidates.tolist(), "k": 5}).json()
    assert len(chosen) == 5 and len(set(chosen)) == 5
    assert all(isinstance(index, int) and 0 <= index < 60 for index in chosen)
    binary = {**model, "candidates": encode(candidates), "k": 5}
    assert client.post(SUGGEST, json=binary).json() == chosen


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"candidates": [[0.0, 1.0]]}, "in_size=3"),
        ({"candidates": [[0.0, 1.0, 2.0], [1.0, 2.0]]}, "candidates"),
        ({"candidates": [[0.0, 1.0, 2.0]], "k": 2}, "k is 2"),
        ({"k": 0}, "k is 0"),
        ({"candidates": "abc"}, "candidates"),
        ({"candidates": []}, "k is 1"),
    ],
)
def test_bad_candidates_are_run_errors(
    client: TestClient, model: dict[str, Any], change: dict[str, Any], says: str
) -> None:
    body = {**model, "candidates": [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], "k": 1, **change}
    response = client.post(SUGGEST, json=body)
    assert response.status_code == 400
    assert response.json()["exception"] == "RunWeightsNetException"
    assert says in response.json()["message"]


def test_non_finite_candidates_name_the_cell(client: TestClient, model: dict[str, Any]) -> None:
    raw = b'{"candidates": [[0, 0, 0], [1, NaN, 1]], "k": 1, '
    raw += orjson.dumps(model)[1:]
    response = client.post(SUGGEST, content=raw, headers={"Content-Type": "application/json"})
    assert response.json()["exception"] == "RunWeightsNetException"
    assert "candidates[1]" in response.json()["message"]


def test_suggest_for_a_missing_model_is_find_model(
    client: TestClient, model: dict[str, Any]
) -> None:
    body = {**model, "name": "nobody", "candidates": PROBE, "k": 1}
    assert client.post(SUGGEST, json=body).json()["exception"] == "FindModelException"
