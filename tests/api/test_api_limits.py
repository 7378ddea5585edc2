"""Configured limits seen through the API: body size, parameter count, sizes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from api_client import Post

from sgt.config import Settings

MAX_BODY_BYTES = 4096


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"max_body_bytes": MAX_BODY_BYTES, "max_parameters": 200_000, "max_in_size": 100}
    )


def run_body(credentials: dict[str, str], rows: int) -> dict[str, object]:
    return {**credentials, "name": "m", "app_name": "app", "data": [[0.5] * 3] * rows}


@pytest.fixture
def model(post: Post, credentials: dict[str, str]) -> None:
    body = {
        **credentials,
        "name": "m",
        "app_name": "app",
        "model_type": "std",
        "in_size": 3,
        "out_size": 2,
        "client_data": None,
        "is_public": False,
    }
    assert post("/public/create_sgt_model", body).status_code == 200


def test_a_body_within_the_limit_is_served(
    post: Post, credentials: dict[str, str], model: None
) -> None:
    body = run_body(credentials, 50)
    assert len(json.dumps(body)) < MAX_BODY_BYTES
    response = post("/public/run_sgt_model", body)
    assert response.status_code == 200 and len(response.json()) == 50


def test_a_body_over_the_limit_is_a_request_exception(
    post: Post, credentials: dict[str, str], model: None
) -> None:
    body = run_body(credentials, 400)
    assert len(json.dumps(body)) > MAX_BODY_BYTES
    response = post("/public/run_sgt_model", body)
    assert response.status_code == 400
    assert response.json()["exception"] == "RequestException"
    assert "limit" in response.json()["message"]
    assert response.headers["x-request-id"]


def test_a_streamed_body_over_the_limit_is_refused(
    post: Post, credentials: dict[str, str], model: None
) -> None:
    encoded = json.dumps(run_body(credentials, 400)).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count
        for start in range(0, len(encoded), 1000):
            yield encoded[start : start + 1000]

    response = post(
        "/public/run_sgt_model", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["exception"] == "RequestException"
    assert "limit" in response.json()["message"]


def test_the_parameter_bound_is_a_create_exception(post: Post, credentials: dict[str, str]) -> None:
    body = {
        **credentials,
        "name": "big",
        "app_name": "app",
        "model_type": "std",
        "in_size": 100,
        "out_size": 100,
    }
    response = post("/public/create_sgt_model", body)
    assert response.status_code == 400
    assert response.json()["exception"] == "CreateWeightsNetException"
    assert "parameters" in response.json()["message"]
    response = post("/public/create_sgt_model", {**body, "in_size": 101, "out_size": 1})
    assert response.json()["exception"] == "CreateWeightsNetException"
    assert "in_size" in response.json()["message"]
