"""One real `sgt serve` for the whole e2e session; each test makes its own users."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_server import Session, SgtServer, register_user

from pg_support import PostgresDatabases

E2E_SYSTEM_KEY = "e2e-system-key"
# Opt-in torch device for the shared servers (SGT_TEST_DEVICE=cuda on a GPU machine). Read once at
# import: the root conftest removes every SGT_* variable before each test runs.
E2E_DEVICE_ENV = (
    {"SGT_DEVICE": os.environ["SGT_TEST_DEVICE"]} if os.environ.get("SGT_TEST_DEVICE") else {}
)
# Every test client of the shared server comes from one loopback address, unlike real users,
# and many tests send wrong keys on purpose: the throttle (tests/e2e/test_e2e_auth_throttle.py,
# with its own server) would otherwise refuse later tests' first checks.
E2E_THROTTLE_ENV = {
    "SGT_AUTH_FAILURE_BURST_PER_KEY": "1000000",
    "SGT_AUTH_FAILURE_BURST_PER_ADDRESS": "1000000",
}
# The whole black-box suite runs against the embedded default and against PostgreSQL.
E2E_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=E2E_BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SgtServer]:
    root: Path = tmp_path_factory.mktemp(f"e2e-{request.param}")
    if request.param == "sqlite":
        yield from _serve(root)
        return
    databases = PostgresDatabases()
    try:
        with databases.fresh() as url:
            yield from _serve(root, SGT_DATABASE_URL=url)
    finally:
        databases.close()


def _serve(root: Path, **extra_env: str) -> Iterator[SgtServer]:
    running = SgtServer(
        root / "data",
        system_key=E2E_SYSTEM_KEY,
        **E2E_DEVICE_ENV,
        **E2E_THROTTLE_ENV,
        **extra_env,
    )
    running.start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def new_user(server: SgtServer) -> Iterator[Callable[..., Session]]:
    """Call it to get a fresh user of the shared server: tests never see each other's models.

    At the end of the test the users' models are deleted, so that their training never keeps
    the one shared trainer from the models of later tests.
    """
    made: list[Session] = []

    def make(prefix: str = "user", **fields: str) -> Session:
        made.append(register_user(server, prefix, **fields))
        return made[-1]

    yield make
    for user in made:
        user.delete_all_models()


@pytest.fixture
def alice(new_user: Callable[..., Session]) -> Session:
    return new_user("alice")


@pytest.fixture
def bob(new_user: Callable[..., Session]) -> Session:
    return new_user("bob")
