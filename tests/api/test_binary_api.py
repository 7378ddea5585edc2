"""The binary extension over HTTP (docs/binary.md): base64 float32 arrays inside the JSON body.

Each answer must equal the plain JSON path's answer; each malformed array must fail with the
operation's exception and a message naming the problem.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from tests.factories import make_model, make_user

from sgt.api.app import create_app
from sgt.config import Settings
from sgt.services.context import ServiceContext
from sgt.services.users import authenticate
from sgt.storage import models as model_store
from sgt.storage import samples as sample_store

RUN = "/sgt/public/run_sgt_model"
UPLOAD = "/sgt/public/upload_sgt_model_train_data"
SECRET_KEY = "key-of-the-user"


class AsgiClient:
    """The app in this thread, through httpx's ASGI transport, its lifespan entered."""

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self.lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self.lifespan.__aenter__())
        transport = httpx.ASGITransport(app=app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://sgt")

    def post(self, path: str, json: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.post(path, json=json))

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.http.get(path))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture
def client(settings: Settings, ctx: ServiceContext) -> Iterator[AsgiClient]:
    test_client = AsgiClient(create_app(settings, ctx))
    yield test_client
    test_client.close()


@pytest.fixture
def model(ctx: ServiceContext) -> dict[str, Any]:
    """Credentials and names of a fresh 3 -> 2 model, ready to be merged into a body."""
    user = make_user(ctx, secret_key=SECRET_KEY)
    name = make_model(ctx, user, in_size=3, out_size=2)
    return {"secret_id": user.secret_id, "secret_key": SECRET_KEY, "app_name": "app", "name": name}


def encode(matrix: np.ndarray) -> dict[str, Any]:
    """What a standard library client sends: shape and base64 of little-endian float32 bytes."""
    data = np.ascontiguousarray(matrix, dtype="<f4")
    return {"dtype": "float32", "shape": list(data.shape), "base64": b64(data.tobytes())}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def decode(value: dict[str, Any]) -> np.ndarray:
    assert value["dtype"] == "float32"
    return np.frombuffer(base64.b64decode(value["base64"]), "<f4").reshape(value["shape"])


def inputs(rows: int = 5, width: int = 3) -> np.ndarray:
    return np.random.default_rng(rows).standard_normal((rows, width)).astype(np.float32)


def post_ok(client: AsgiClient, path: str, body: dict[str, Any]) -> Any:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def post_fails(client: AsgiClient, path: str, body: dict[str, Any]) -> tuple[str, str]:
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    return error["exception"], error["message"]


# Run ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("send_binary", [False, True])
@pytest.mark.parametrize("answer_binary", [False, True])
def test_run_answers_what_the_json_path_answers(
    client: AsgiClient, model: dict[str, Any], send_binary: bool, answer_binary: bool
) -> None:
    rows = inputs()
    expected = np.asarray(post_ok(client, RUN, {**model, "data": rows.tolist()}), np.float32)

    body = {**model, "data": encode(rows) if send_binary else rows.tolist()}
    if answer_binary:
        body["response_format"] = "binary"
    answer = post_ok(client, RUN, body)

    got = decode(answer) if answer_binary else np.asarray(answer, np.float32)
    assert got.shape == (5, 2)
    np.testing.assert_array_equal(got, expected)


def test_json_response_format_is_the_plain_contract(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    answer = post_ok(client, RUN, {**model, "data": inputs().tolist(), "response_format": "json"})
    assert isinstance(answer, list) and len(answer) == 5


def test_empty_binary_data_answers_an_empty_array(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    body = {**model, "data": encode(np.zeros((0, 3))), "response_format": "binary"}
    answer = post_ok(client, RUN, body)
    assert answer["shape"] == [0, 2] and decode(answer).size == 0


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"dtype": "float32", "shape": [1, 3], "base64": "AAAA*AAA"}, "base64"),
        ({"dtype": "float32", "shape": [2, 3], "base64": b64(bytes(12))}, "shape [2, 3]"),
        ({"dtype": "float32", "shape": [3], "base64": b64(bytes(12))}, "data.shape"),
        ({"dtype": "float32", "shape": [1, -3], "base64": b64(bytes(12))}, "data.shape"),
        ({"dtype": "float32", "shape": [1, 1, 3], "base64": b64(bytes(12))}, "data.shape"),
        ({"dtype": "float64", "shape": [1, 3], "base64": b64(bytes(24))}, "float64"),
        ({"dtype": "float32", "shape": [1, 3]}, "data.base64"),
        ({"dtype": "float32", "shape": "1x3", "base64": b64(bytes(12))}, "data.shape"),
        ({"dtype": "float32", "shape": [1, 4], "base64": b64(bytes(16))}, "in_size=3"),
    ],
)
def test_malformed_arrays_fail_as_run_exceptions_naming_the_problem(
    client: AsgiClient, model: dict[str, Any], data: dict[str, Any], named: str
) -> None:
    exception, message = post_fails(client, RUN, {**model, "data": data})
    assert exception == "RunWeightsNetException"
    assert named in message


def test_non_finite_binary_values_are_named_by_cell(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    rows = inputs()
    rows[3, 1] = np.nan
    exception, message = post_fails(client, RUN, {**model, "data": encode(rows)})
    assert exception == "RunWeightsNetException"
    assert "data[3][1]" in message


def test_small_runs_of_trusted_credentials_still_check_them(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    # The first run is verified in the thread pool; later small ones run on the event loop.
    body = {**model, "data": encode(inputs(1)), "response_format": "binary"}
    first, second = post_ok(client, RUN, body), post_ok(client, RUN, body)
    assert first == second
    assert post_fails(client, RUN, {**body, "secret_key": "wrong"})[0] == "AuthException"
    assert post_fails(client, RUN, {**body, "data": {"dtype": "float32"}})[0] == (
        "RunWeightsNetException"
    )
    assert post_ok(client, RUN, body) == first


def test_unknown_response_format_is_a_request_exception(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    body = {**model, "data": inputs().tolist(), "response_format": "npy"}
    exception, message = post_fails(client, RUN, body)
    assert exception == "RequestException"
    assert "response_format" in message


def test_credentials_are_judged_before_a_malformed_array(
    client: AsgiClient, model: dict[str, Any]
) -> None:
    body = {**model, "secret_key": "wrong", "data": {"dtype": "float32", "base64": "*"}}
    exception, _ = post_fails(client, RUN, body)
    assert exception == "AuthException"


# Upload -------------------------------------------------------------------------------------


def sample_arrays(ctx: ServiceContext, model: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Every stored sample of `model`."""
    user = authenticate(ctx, model["secret_id"], model["secret_key"])
    with ctx.db.read() as session:
        row = model_store.find_model(
            session, owner_id=user.id, app_name=model["app_name"], name=model["name"]
        )
        assert row is not None
        return sample_store.load_samples(session, model_id=row.id, in_size=3, out_size=2)


def test_binary_upload_stores_what_the_json_upload_stores(
    client: AsgiClient, ctx: ServiceContext, model: dict[str, Any]
) -> None:
    x, y = inputs(7, 3), inputs(7, 2)
    pairs = [[row, label] for row, label in zip(x.tolist(), y.tolist(), strict=True)]
    assert post_ok(client, UPLOAD, {**model, "train_data": pairs}) is None
    arrays = {"inputs": encode(x), "labels": encode(y)}
    assert post_ok(client, UPLOAD, {**model, "train_data": arrays}) is None

    stored_x, stored_y = sample_arrays(ctx, model)
    np.testing.assert_array_equal(stored_x, np.concatenate([x, x]))
    np.testing.assert_array_equal(stored_y, np.concatenate([y, y]))
    status = post_ok(client, "/sgt/public/get_sgt_model_train_status", model)
    assert status["sample_count"] == 14


def test_empty_binary_upload_is_a_no_op(
    client: AsgiClient, ctx: ServiceContext, model: dict[str, Any]
) -> None:
    arrays = {"inputs": encode(np.zeros((0, 3))), "labels": encode(np.zeros((0, 2)))}
    assert post_ok(client, UPLOAD, {**model, "train_data": arrays}) is None
    assert sample_arrays(ctx, model)[0].shape == (0, 3)


@pytest.mark.parametrize(
    ("train_data", "named"),
    [
        (
            {"inputs": {"dtype": "float32", "shape": [1, 3], "base64": "@@@@"}, "labels": None},
            "base64",
        ),
        (
            {
                "inputs": {"dtype": "float32", "shape": [1, 3], "base64": b64(bytes(12))},
                "labels": {"dtype": "float32", "shape": [1, 2], "base64": "not base64!"},
            },
            "train_data.labels.base64",
        ),
        (
            {
                "inputs": {"dtype": "float32", "shape": [2, 3], "base64": b64(bytes(12))},
                "labels": {"dtype": "float32", "shape": [1, 2], "base64": b64(bytes(8))},
            },
            "train_data.inputs",
        ),
        (
            {
                "inputs": {"dtype": "float32", "shape": [2, 3], "base64": b64(bytes(24))},
                "labels": {"dtype": "float32", "shape": [1, 2], "base64": b64(bytes(8))},
            },
            "2 inputs but 1 labels",
        ),
        (
            {
                "inputs": {"dtype": "float32", "shape": [1, 3], "base64": b64(bytes(12))},
                "labels": {"dtype": "float32", "shape": [1, 3], "base64": b64(bytes(12))},
            },
            "out_size=2",
        ),
        ({"inputs": {"dtype": "float32", "shape": [1, 3], "base64": b64(bytes(12))}}, "labels"),
    ],
)
def test_malformed_upload_arrays_fail_as_upload_exceptions(
    client: AsgiClient,
    ctx: ServiceContext,
    model: dict[str, Any],
    train_data: dict[str, Any],
    named: str,
) -> None:
    exception, message = post_fails(client, UPLOAD, {**model, "train_data": train_data})
    assert exception == "UploadDataException"
    assert named in message
    assert sample_arrays(ctx, model)[0].shape == (0, 3)


def test_openapi_documents_the_binary_extension(client: AsgiClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert schemas["Float32Array"]["properties"]["base64"]["contentEncoding"] == "base64"
    data = schemas["RunModelRequest"]["properties"]["data"]["anyOf"]
    assert {"$ref": "#/components/schemas/Float32Array"} in data
    assert "response_format" in schemas["RunModelRequest"]["properties"]
    assert "binary" in document["paths"][RUN]["post"]["description"]
