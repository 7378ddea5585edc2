"""run_sgt_model and upload_sgt_model_train_data over HTTP: shapes, strict validation naming the
row and column, and the training status they lead to; plus malformed bodies and unknown paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from e2e_server import Session, SgtServer, assert_error

pytestmark = pytest.mark.e2e

RUN = "/public/run_sgt_model"
UPLOAD = "/public/upload_sgt_model_train_data"


@pytest.fixture
def owner(alice: Session) -> Session:
    """alice with a 3 -> 2 model named "m" in app "app"."""
    alice.create("m")
    return alice


def test_an_untrained_model_answers_n_rows_of_out_size(owner: Session) -> None:
    data = [[0.0, 0.0, 0.0], [1.0, -2.0, 3.5], [1e6, -1e6, 0.25]]
    first = owner.run("m", data)
    assert len(first) == 3
    assert all(len(row) == 2 and all(isinstance(v, float) for v in row) for row in first)
    assert all(math.isfinite(v) for row in first for v in row)
    assert owner.run("m", data) == first, "same input, same answer"
    alone = owner.run("m", data[1:2])
    assert np.allclose(alone, first[1:2], rtol=1e-5), "a row's answer does not depend on others"


def test_a_large_request_answers_every_row_in_order(owner: Session) -> None:
    rng = np.random.default_rng(7)
    data = rng.uniform(-1, 1, size=(3000, 3)).round(4).tolist()
    answer = np.array(owner.run("m", data))
    assert answer.shape == (3000, 2)
    for start in (0, 1500, 2990):
        piece = np.array(owner.run("m", data[start : start + 10]))
        assert np.allclose(answer[start : start + 10], piece, rtol=1e-5)


def test_integers_are_numbers(owner: Session) -> None:
    assert owner.run("m", [[1, 2, 3]]) == owner.run("m", [[1.0, 2.0, 3.0]])


def test_empty_data_answers_an_empty_list(owner: Session) -> None:
    assert owner.run("m", []) == []


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ([[1, 2, 3], [1, 2]], ["data[1]"]),
        ([[1, 2, 3], [1, 2, 3, 4]], ["data[1]"]),
        ([[1, 2], [3, 4]], ["in_size=3"]),
        ([[1, 2, 3], [4, "x", 6]], ["data[1][1]"]),
        ([[1, 2, 3], [4, 5, None]], ["data[1][2]"]),
        ([[1, 2, 3], [4, 5, True]], ["data[1][2]"]),
        ([[1, 2, 3], [4, 5, [6]]], ["data[1][2]"]),
        ([[1, 2, 3], [4, 5, 6], [7, float("nan"), 9]], ["data[2][1]", "nan"]),
        ([[float("inf"), 2, 3]], ["data[0][0]"]),
        ([[1, 2, 3], [1, 2, float("-inf")]], ["data[1][2]"]),
        ([[1, 2, 3], [1e39, 2, 3]], ["data[1][0]"]),
        ([1, 2, 3], ["data[0]"]),
        ([[[1, 2, 3]]], ["data[0][0]"]),
        ("1,2,3", ["data"]),
        ({"0": [1, 2, 3]}, ["data"]),
    ],
)
def test_bad_data_is_a_run_exception_naming_the_cell(
    owner: Session, data: object, fragments: list[str]
) -> None:
    assert_error(
        owner.post(RUN, name="m", app_name="app", data=data), "RunWeightsNetException", *fragments
    )


def test_missing_data_is_a_request_exception(owner: Session) -> None:
    assert_error(owner.post(RUN, name="m", app_name="app"), "RequestException", "data")


def test_nan_tokens_as_python_writes_them(server: SgtServer, owner: Session) -> None:
    for token, cell in (
        (b"NaN", "data[1][0]"),
        (b"Infinity", "data[1][0]"),
        (b"-Infinity", "data[1][0]"),
    ):
        body = (
            b'{"secret_id": "%s", "secret_key": "%s", "name": "m", "app_name": "app", '
            b'"data": [[1, 2, 3], [%s, 2, 3]]}'
            % (owner.secret_id.encode(), owner.secret_key.encode(), token)
        )
        assert_error(server.post(RUN, content=body), "RunWeightsNetException", cell)


def test_upload_makes_the_samples_count_and_schedules_training(owner: Session) -> None:
    assert owner.status("m")["state"] == "untrained"
    pairs = [[[0.1 * i, 0.2, 0.3], [float(i), -1.0]] for i in range(7)]
    owner.upload("m", pairs)
    status = owner.status("m")
    assert status["sample_count"] == 7
    assert status["state"] in {"queued", "training", "converged"}
    owner.upload("m", pairs[:3])
    assert owner.status("m")["sample_count"] == 10


def test_an_empty_upload_is_a_no_op(owner: Session) -> None:
    reply = owner.post(UPLOAD, name="m", app_name="app", train_data=[])
    assert (reply.status, reply.body) == (200, None)
    status = owner.status("m")
    assert (status["state"], status["sample_count"]) == ("untrained", 0)


def test_the_training_status_has_the_documented_fields(owner: Session) -> None:
    status = owner.status("m")
    assert {"state", "sample_count", "steps", "train_loss", "val_loss", "loss_history"} <= set(
        status
    )
    assert "updated_at" in status
    assert (status["steps"], status["loss_history"]) == (0, [])


@pytest.mark.parametrize(
    ("train_data", "fragments"),
    [
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3]]], ["train_data[1]"]),
        ([[[1, 2, 3], [4, 5], [6]]], ["train_data[0]"]),
        ([[[1, 2, 3], [4, 5]], [[1, 2], [4, 5]]], ["train_data[1]"]),
        ([[[1, 2], [4, 5]], [[1, 2], [4, 5]]], ["in_size=3"]),
        ([[[1, 2, 3], [4, 5, 6]]], ["out_size=2"]),
        ([[[1, 2, 3], [4, 5]], [[1, "2", 3], [4, 5]]], ["train_data[1][0][1]"]),
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3], [4, None]]], ["train_data[1][1][1]"]),
        ([[[1, 2, 3], [4, 5]], [[1, 2, 3], [4, float("nan")]]], ["train_data[1][1][1]"]),
        ([[[1, 2, 3], [4, 5]], [[1, float("inf"), 3], [4, 5]]], ["train_data[1][0][1]"]),
        ([[1, 2, 3], [4, 5]], ["train_data[0]"]),
        ([[1, 2, 3, 4, 5]], ["train_data[0]"]),
        ("pairs", ["train_data"]),
    ],
)
def test_bad_train_data_is_an_upload_exception_naming_the_cell(
    owner: Session, train_data: object, fragments: list[str]
) -> None:
    reply = owner.post(UPLOAD, name="m", app_name="app", train_data=train_data)
    assert_error(reply, "UploadDataException", *fragments)
    assert owner.status("m")["sample_count"] == 0, "nothing of a refused upload is stored"


def test_clear_removes_the_samples_and_keeps_the_model(owner: Session) -> None:
    owner.upload("m", [[[1, 2, 3], [4, 5]]] * 4)
    reply = owner.post("/public/clear_sgt_model_train_data", name="m", app_name="app")
    assert (reply.status, reply.body) == (200, None)
    status = owner.status("m")
    assert status["sample_count"] == 0
    assert status["state"] in {"untrained", "converged"}
    assert len(owner.run("m", [[1, 2, 3]])) == 1


@pytest.mark.parametrize(
    "content", [b"{", b"{'a': 1}", b"not json", b'{"name": "m",}', b"\xff\xfe", b"[1,"]
)
def test_malformed_json_is_a_request_exception(server: SgtServer, content: bytes) -> None:
    reply = server.post(RUN, content=content)
    assert_error(reply, "RequestException", "json")


def test_trailing_bytes_after_the_object_are_a_request_exception(server: SgtServer) -> None:
    assert_error(server.post(RUN, content=b'{"a": 1} trailing'), "RequestException")


@pytest.mark.parametrize("content", [b"[]", b"[1, 2]", b'"text"', b"12", b"null", b"true"])
def test_a_body_that_is_not_an_object_is_a_request_exception(
    server: SgtServer, content: bytes
) -> None:
    for path in (RUN, "/public/check_auth_token", "/private/update_auth_token"):
        assert_error(server.post(path, content=content), "RequestException", "object")


def test_check_auth_token_on_a_malformed_body_is_a_request_exception(server: SgtServer) -> None:
    reply = server.post("/public/check_auth_token", content=b"{nope")
    assert_error(reply, "RequestException")


@pytest.mark.parametrize(
    "path", ["/sgt/public/nope", "/nope", "/sgt", "/sgt/private/run_sgt_model"]
)
def test_unknown_paths_are_400(server: SgtServer, path: str) -> None:
    response = server.http.post(server.base_url + path, json={})
    assert response.status_code == 400
    assert set(response.json()) == {"exception", "message"}
    assert response.json()["exception"] == "RequestException"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    "path", ["/sgt/public/run_sgt_model", "/sgt/public/list_model_type", "/sgt/public/nope"]
)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_api_paths_are_400(server: SgtServer, path: str, method: str) -> None:
    response = server.http.request(method, server.base_url + path)
    assert response.status_code == 400
    assert response.json()["exception"] == "RequestException"
    assert set(response.json()) == {"exception", "message"}
    assert response.headers["x-request-id"]
