"""/public/export_sgt_model over HTTP: the answer's shape, the file it carries answers what
run_sgt_model answers, and every failure is the contract's 400 under the operation's name."""

from __future__ import annotations

import base64

import numpy as np
import onnxruntime
import pytest
from api_client import Post, TestClient
from sqlalchemy import select

from factories import SYSTEM_KEY, make_samples
from sgt.ml.base import ModelShape
from sgt.ml.registry import get_model_type
from sgt.services.context import ServiceContext
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage.tables import ModelRow

EXPORT = "/public/export_sgt_model"


def store_trained_weights(ctx: ServiceContext, name: str, model_type: str) -> None:
    """What a trainer leaves behind: a checkpoint of weights fitted to 30 samples."""
    inputs, targets = make_samples(30, seed=4)
    run = get_model_type(model_type).start_training(
        ModelShape(3, 2), inputs, targets, start=None, seed=1, device="cpu"
    )
    while not run.step().is_converged:
        pass
    with ctx.db.write() as session:
        model_id = session.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar_one()
        checkpoint_store.write_checkpoint(
            session,
            model_id=model_id,
            model_type=model_type,
            weights=run.best().to_bytes(),
            trained_sample_count=30,
            now=ctx.db.now(session),
        )


@pytest.fixture
def model(post: Post, credentials: dict[str, str]) -> dict[str, str]:
    ref = {**credentials, "app_name": "houdini", "name": "arm"}
    created = {**ref, "model_type": "linear", "in_size": 3, "out_size": 2, "is_public": True}
    assert post("/public/create_sgt_model", created).status_code == 200
    return ref


def test_the_export_runs_in_onnxruntime_as_the_model_runs(
    client: TestClient, post: Post, model: dict[str, str]
) -> None:
    store_trained_weights(client.app.state.ctx, "arm", "linear")  # type: ignore[attr-defined]
    response = post(EXPORT, model)
    assert response.status_code == 200
    body = response.json()
    assert {key: value for key, value in body.items() if key != "base64"} == {
        "format": "onnx",
        "opset": 17,
        "input": "input",
        "output": "output",
        "in_size": 3,
        "out_size": 2,
    }
    session = onnxruntime.InferenceSession(
        base64.b64decode(body["base64"]), providers=["CPUExecutionProvider"]
    )
    data = np.random.default_rng(5).uniform(-3, 3, size=(100, 3)).astype(np.float32)
    served = post("/public/run_sgt_model", {**model, "data": data.tolist()}).json()
    exported = session.run([body["output"]], {body["input"]: data})[0]
    np.testing.assert_allclose(exported, np.array(served), rtol=1e-4, atol=1e-5)


def error_of(post: Post, body: dict[str, object]) -> tuple[str, str]:
    response = post(EXPORT, body)
    assert response.status_code == 400
    answer = response.json()
    return answer["exception"], answer["message"]


def test_an_untrained_model_is_refused_under_the_run_exception(
    post: Post, model: dict[str, str]
) -> None:
    exception, message = error_of(post, model)
    assert exception == "RunWeightsNetException"
    assert "'arm'" in message and "no trained weights" in message


def test_only_the_owner_may_export_even_a_public_model(
    client: TestClient, post: Post, model: dict[str, str]
) -> None:
    store_trained_weights(client.app.state.ctx, "arm", "linear")  # type: ignore[attr-defined]
    bob = {"key": SYSTEM_KEY, "secret_id": "bob", "secret_key": "bob-secret-key"}
    assert post("/private/update_auth_token", bob).status_code == 200
    foreign = {"secret_id": "bob", "secret_key": "bob-secret-key", "app_name": "houdini"}
    assert error_of(post, {**foreign, "name": "arm"})[0] == "FindModelException"
    assert error_of(post, {**model, "name": "missing"})[0] == "FindModelException"


def test_bad_credentials_and_bodies_are_the_contract_s_errors(
    post: Post, model: dict[str, str]
) -> None:
    assert error_of(post, {**model, "secret_key": "wrong"})[0] == "AuthException"
    assert error_of(post, {k: v for k, v in model.items() if k != "name"})[0] == (
        "RequestException"
    )
