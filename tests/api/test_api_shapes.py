"""The OpenAPI document describes the answers the API really sends: for each documented 200
schema, the encoded body has exactly its field names, and every value has its type."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from api_client import Post, TestClient
from test_api_versions import converge, weights_of

from sgt.api.pipeline import encode_answer
from sgt.api.schemas import TrainStatusBody
from sgt.domain.training import TrainingState, TrainingStatus

JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def mismatches(document: dict, schema: dict, value: Any, where: str = "$") -> list[str]:
    """How `value` departs from `schema`: wrong types, missing or extra field names."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:
        if any(not mismatches(document, option, value, where) for option in schema["anyOf"]):
            return []
        return [f"{where}: {value!r} matches none of {schema['anyOf']}"]
    kinds = schema.get("type")
    if kinds is None:
        return []  # any JSON value (client_data)
    kinds = [kinds] if isinstance(kinds, str) else kinds
    is_bool = isinstance(value, bool)
    if not any(
        isinstance(value, JSON_TYPES[kind]) and (kind == "boolean" or not is_bool) for kind in kinds
    ):
        return [f"{where}: {value!r} is not {kinds}"]
    problems = []
    if isinstance(value, dict) and "properties" in schema:
        if set(value) != set(schema["properties"]):
            problems.append(f"{where}: fields {sorted(value)} != {sorted(schema['properties'])}")
        for name, field_schema in schema["properties"].items():
            if name in value:
                problems += mismatches(document, field_schema, value[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += mismatches(document, schema["items"], item, f"{where}[{index}]")
    return problems


@pytest.fixture
def document(client: TestClient) -> dict:
    return client.get("/openapi.json").json()


def answer_schema(document: dict, path: str) -> dict:
    responses = document["paths"]["/sgt" + path]["post"]["responses"]
    return responses["200"]["content"]["application/json"]["schema"]


def test_model_records_and_training_status_match_their_schemas(
    post: Post, credentials: dict[str, str], document: dict
) -> None:
    model = {**credentials, "app_name": "maya", "name": "m"}
    created = {**model, "model_type": "std", "in_size": 2, "out_size": 1, "is_public": True}
    assert post("/public/create_sgt_model", {**created, "client_data": {"k": [1]}}).is_success
    train_data = [[[0.5, 1.0], [3.0]], [[1.0, 2.0], [1.5]]]
    answers = {
        "/public/read_my_sgt_model": credentials,
        "/public/read_public_sgt_model": credentials,
        "/public/get_sgt_model_train_status": model,
    }

    def check_answers(stage: str) -> None:
        for path, body in answers.items():
            response = post(path, body)
            assert response.status_code == 200
            schema = answer_schema(document, path)
            assert mismatches(document, schema, response.json()) == [], (stage, path)

    check_answers("created")
    assert post(
        "/public/upload_sgt_model_train_data", {**model, "train_data": train_data}
    ).is_success
    check_answers("uploaded")
    [record] = post("/public/read_my_sgt_model", credentials).json()
    assert len(record) == 8


def test_a_trained_status_matches_its_schema(document: dict) -> None:
    # Every optional field filled, as a trainer leaves it: the path HTTP tests cannot reach
    # without training.
    status = TrainingStatus(
        state=TrainingState.CONVERGED,
        sample_count=10,
        trained_sample_count=10,
        steps=300,
        train_loss=0.25,
        val_loss=1e-22,
        loss_history=[[0.0, 1.0, None], [300.0, 0.25, 1e-22]],
        updated_at=datetime(2026, 1, 2, 3, 4, 5),
        val_rows=2,
        val_mae=0.5,
        val_p95_abs_error=1.25,
        val_max_abs_error=1.5,
        val_mae_per_output=[0.25, 0.75],
    )
    body = orjson.loads(encode_answer(TrainStatusBody.of(status)))
    schema = answer_schema(document, "/public/get_sgt_model_train_status")
    assert mismatches(document, schema, body) == []
    assert (body["state"], body["updated_at"]) == ("converged", "2026-01-02 03:04:05")
    assert (body["val_rows"], body["val_mae"], body["val_mae_per_output"]) == (2, 0.5, [0.25, 0.75])
    assert (body["val_p95_abs_error"], body["val_max_abs_error"]) == (1.25, 1.5)


def test_the_status_documents_its_error_figures_as_nullable(document: dict) -> None:
    schema = answer_schema(document, "/public/get_sgt_model_train_status")
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    figures = ["val_rows", "val_mae", "val_p95_abs_error", "val_max_abs_error"]
    for name in [*figures, "val_mae_per_output"]:
        field = schema["properties"][name]
        assert mismatches(document, field, None) == [], f"{name} may be null"
    assert mismatches(document, schema["properties"]["val_mae_per_output"], [1.0]) == []
    assert mismatches(document, schema["properties"]["val_rows"], 1.5), "val_rows is an integer"


def test_model_versions_match_their_schema(
    client: TestClient, post: Post, credentials: dict[str, str], document: dict
) -> None:
    model = {**credentials, "app_name": "maya", "name": "m"}
    created = {**model, "model_type": "std", "in_size": 2, "out_size": 1}
    assert post("/public/create_sgt_model", created).status_code == 200
    for seed in (1, 2):
        converge(client, post, model, weights_of(seed))
    answers = {
        "/public/list_sgt_model_versions": model,
        "/public/rollback_sgt_model": {**model, "version": 1},
    }
    for path, body in answers.items():
        response = post(path, body)
        assert response.status_code == 200, response.json()
        assert mismatches(document, answer_schema(document, path), response.json()) == [], path
    listed = post("/public/list_sgt_model_versions", model).json()
    assert [set(entry) for entry in listed] == [
        {"version", "created_at", "sample_count", "val_loss", "served"}
    ] * 2


def test_every_answer_documents_its_schema(document: dict) -> None:
    for path in document["paths"]:
        if path.startswith("/sgt/"):
            assert answer_schema(document, path[len("/sgt") :]), path


def test_the_checker_sees_a_drifted_field(document: dict) -> None:
    schema = answer_schema(document, "/public/read_my_sgt_model")
    drifted = [{"user_unique_id": "a", "name": "m", "client_data": None, "app_name": "x"}]
    assert mismatches(document, schema, drifted)
    assert mismatches(document, {"type": "integer"}, True)
