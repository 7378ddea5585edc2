"""Unexpected faults become the contract's InternalException: a generic body, an X-Request-ID,
and the traceback in the log under that id."""

from __future__ import annotations

import logging

import pytest
from api_client import Post, TestClient

from sgt.api import pipeline
from sgt.errors import StorageError
from sgt.services import models

LEAKY_MESSAGE = "boom at /srv/sgt-data/sgt.db: SELECT key_hash FROM users"


def explode(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError(LEAKY_MESSAGE)


def test_an_unexpected_fault_is_an_internal_exception_logged_under_the_request_id(
    post: Post,
    credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(models, "list_my_models", explode)
    with caplog.at_level(logging.ERROR):
        response = post("/public/read_my_sgt_model", credentials)
    assert response.status_code == 400
    assert response.json() == {"exception": "InternalException", "message": "internal exception"}
    request_id = response.headers["x-request-id"]
    assert request_id
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert LEAKY_MESSAGE in caplog.text, "the traceback is in the log"
    assert "boom" not in response.text and "SELECT" not in response.text


def test_a_fault_while_authenticating_is_an_internal_exception(
    post: Post, credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "authenticate", explode)
    response = post("/public/read_my_sgt_model", credentials)
    assert response.status_code == 400
    assert response.json() == {"exception": "InternalException", "message": "internal exception"}


def test_a_storage_failure_is_an_internal_exception(
    post: Post, credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: object, **_kwargs: object) -> None:
        raise StorageError("the database is unavailable")

    monkeypatch.setattr(models, "list_my_models", unavailable)
    response = post("/public/read_my_sgt_model", credentials)
    assert response.status_code == 400
    assert response.json()["exception"] == "InternalException"
    assert response.headers["x-request-id"]


def test_every_answer_has_its_own_request_id(post: Post, client: TestClient) -> None:
    ids = {
        post("/public/list_model_type", {}).headers["x-request-id"],
        post("/public/list_model_type", {}).headers["x-request-id"],
        post("/public/check_auth_token", {}).headers["x-request-id"],
        client.get("/healthz").headers["x-request-id"],
        client.get("/nowhere").headers["x-request-id"],
    }
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sgt/public/read_my_sgt_model"),
        ("PUT", "/sgt/public/run_sgt_model"),
        ("POST", "/sgt/public/unknown"),
        ("POST", "/healthz"),
        ("GET", "/favicon.ico"),
    ],
)
def test_framework_errors_never_reach_a_client(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 400
    assert set(response.json()) == {"exception", "message"}
    assert response.json()["exception"] == "RequestException"


def test_a_form_body_is_a_request_exception_not_a_422(post: Post) -> None:
    response = post("/public/read_my_sgt_model", data={"secret_id": "a", "secret_key": "b"})
    assert response.status_code == 400
    assert response.json()["exception"] in {"RequestException", "AuthException"}
