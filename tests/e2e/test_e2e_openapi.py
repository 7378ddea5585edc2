"""The OpenAPI document and the docs page describe every endpoint with its request fields."""

from __future__ import annotations

import pytest
from e2e_server import SgtServer

pytestmark = pytest.mark.e2e

# Path -> fields its request schema must name (besides the credentials of authenticated ones).
DOCUMENTED = {
    "/sgt/private/update_auth_token": {"key", "secret_id", "secret_key", "doc", "end_time"},
    "/sgt/public/check_auth_token": {"secret_id", "secret_key"},
    "/sgt/public/create_sgt_model": {
        "name",
        "app_name",
        "model_type",
        "client_data",
        "in_size",
        "out_size",
        "is_public",
    },
    "/sgt/public/delete_sgt_model": {"name", "app_name"},
    "/sgt/public/update_sgt_model_client_data": {"name", "app_name", "client_data"},
    "/sgt/public/read_my_sgt_model": set(),
    "/sgt/public/read_public_sgt_model": set(),
    "/sgt/public/clone_sgt_model_to_mine": {"new_name", "app_name", "author_unique_id", "name"},
    "/sgt/public/run_sgt_model": {"name", "app_name", "data"},
    "/sgt/public/upload_sgt_model_train_data": {"name", "app_name", "train_data"},
    "/sgt/public/list_model_type": set(),
    "/sgt/public/get_sgt_model_train_status": {"name", "app_name"},
    "/sgt/public/clear_sgt_model_train_data": {"name", "app_name"},
    # Extensions (API.md names them): versions, export, suggestions.
    "/sgt/public/list_sgt_model_versions": {"name", "app_name"},
    "/sgt/public/rollback_sgt_model": {"name", "app_name", "version"},
    "/sgt/public/export_sgt_model": {"name", "app_name"},
    "/sgt/public/suggest_sgt_model_samples": {"name", "app_name", "candidates", "k"},
}
UNAUTHENTICATED = {"/sgt/private/update_auth_token", "/sgt/public/list_model_type"}


@pytest.fixture(scope="module")
def document(server: SgtServer) -> dict:
    response = server.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


@pytest.mark.parametrize("path", sorted(DOCUMENTED))
def test_every_endpoint_is_documented_with_its_request_fields(document: dict, path: str) -> None:
    operation = document["paths"][path]["post"]
    assert operation.get("summary")
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    properties = set(resolve(document, schema).get("properties", {}))
    expected = DOCUMENTED[path]
    if path not in UNAUTHENTICATED:
        expected = expected | {"secret_id", "secret_key"}
    assert expected <= properties
    assert "400" in operation["responses"]


def test_the_document_lists_no_undocumented_api_path(document: dict) -> None:
    api_paths = {path for path in document["paths"] if path.startswith("/sgt/")}
    assert api_paths == set(DOCUMENTED)


def test_the_docs_page_answers(server: SgtServer) -> None:
    response = server.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "openapi.json" in response.text


def test_health_endpoints(server: SgtServer) -> None:
    assert server.get("/healthz").json() == {"status": "ok"}
    ready = server.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    metrics = server.get("/metrics")
    assert metrics.status_code == 200
    assert "sgt_http_requests_total" in metrics.text
