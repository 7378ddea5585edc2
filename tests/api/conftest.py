"""In-process API tests: the real app over a temporary SQLite file, through Starlette's
TestClient (the lifespan runs, so the database is migrated as on a real start). Modules that
must behave the same on both backends take `backend_settings` as their `app_settings`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_client import Post, TestClient

from factories import SYSTEM_KEY
from pg_support import PostgresDatabases
from sgt.api.app import create_app
from sgt.config import Settings

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def backend_settings(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """`settings` on the temporary SQLite file, or on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield settings
        return
    databases: PostgresDatabases = request.getfixturevalue("pg_databases")
    with databases.fresh() as url:
        yield settings.model_copy(update={"database_url": url})


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The settings the app is built with; tests override fields with `model_copy`."""
    return settings


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


@pytest.fixture
def post(client: TestClient) -> Post:
    """POST a JSON body to /sgt + path."""

    def send(path: str, body: Any = None, **options: Any) -> httpx.Response:
        if body is not None:
            options["json"] = body
        return client.post("/sgt" + path, **options)

    return send


@pytest.fixture
def credentials(post: Post) -> dict[str, str]:
    """A user created through the API."""
    body = {"key": SYSTEM_KEY, "secret_id": "alice", "secret_key": "alice-secret-key"}
    assert post("/private/update_auth_token", body).status_code == 200
    return {"secret_id": "alice", "secret_key": "alice-secret-key"}
