"""The `weights` type through `sgt serve`, as the skinning plug-in uses it: train on one mesh,
predict another mesh it has not seen (other vertices, another pose), and every predicted row is
a skin weight row with at most `max_influences` non-zero entries."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_server import Session, SgtServer, assert_error

from skin_mesh import invalid_rows, skin_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BONES = 8
IN_SIZE = 3 * (BONES + 1)
# A bound on the wait, not a claim about speed: a run ends within SGT_MAX_TRAIN_SECONDS (60 s).
CONVERGENCE_DEADLINE_SECONDS = 180.0


def test_a_trained_weights_model_predicts_skin_weights_on_an_unseen_mesh(alice: Session) -> None:
    alice.create("skin", model_type="weights", in_size=IN_SIZE, out_size=BONES, max_influences=4)
    [record] = [model for model in alice.my_models() if model["name"] == "skin"]
    assert (record["model_type"], "max_influences" in record) == ("weights", False)

    inputs, weights = skin_mesh(600, bones=BONES, seed=1)
    alice.upload("skin", [[x, y] for x, y in zip(inputs.tolist(), weights.tolist(), strict=True)])
    # The first weights trained on the mesh, not convergence: validity is by construction, and
    # "better than the mean" needs no converged model (converging took 45 s of the suite).
    alice.wait_for_weights_trained_on("skin", 600, deadline_seconds=CONVERGENCE_DEADLINE_SECONDS)

    other_mesh, truth = skin_mesh(2000, bones=BONES, bend=0.05, seed=2)
    predicted = np.array(alice.run("skin", other_mesh.tolist()))
    invalid = invalid_rows(predicted, max_nonzero=4)
    rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
    print(
        f"\ne2e weights: {invalid} invalid rows of {len(predicted)} on an unseen mesh "
        f"(max_influences 4, RMSE {rmse:.4f}, mean weight {truth.mean():.4f})"
    )
    assert invalid == 0
    # It learned something: better than predicting the training mean (how much better is
    # bench/skinning.py's business).
    assert rmse < float(np.sqrt(np.mean((truth - weights.mean(axis=0)) ** 2)))


def test_an_untrained_weights_model_answers_rows_within_its_max_influences(alice: Session) -> None:
    alice.create("skin", model_type="weights", in_size=IN_SIZE, out_size=BONES, max_influences=3)
    mesh, _ = skin_mesh(50, bones=BONES, seed=3)
    predicted = np.array(alice.run("skin", mesh.tolist()))
    assert predicted.shape == (50, BONES)
    assert invalid_rows(predicted, max_nonzero=3) == 0


def test_max_influences_is_refused_where_it_does_not_apply(alice: Session) -> None:
    def create(**fields: object) -> None:
        body = {"model_type": "weights", "in_size": 3, "out_size": 4, **fields}
        reply = alice.post("/public/create_sgt_model", name="m", app_name="app", **body)
        assert_error(reply, "CreateWeightsNetException", *expected)

    expected = ["max_influences", "weights"]
    create(model_type="std", max_influences=2)
    expected = ["max_influences", "between 1 and out_size"]
    create(max_influences=0)
    create(max_influences=5)
    expected = ["weights:2"]
    create(model_type="weights:2")
    reply = alice.post(
        "/public/create_sgt_model",
        name="m",
        app_name="app",
        model_type="weights",
        in_size=3,
        out_size=4,
        max_influences="2",
    )
    assert_error(reply, "RequestException", "max_influences")
    assert alice.my_models() == []


def test_the_openapi_document_describes_max_influences(server: SgtServer) -> None:
    document = server.get("/openapi.json").json()
    operation = document["paths"]["/sgt/public/create_sgt_model"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    field = schema["properties"]["max_influences"]
    assert "weights" in field["description"] and "max_influences" not in schema["required"]
