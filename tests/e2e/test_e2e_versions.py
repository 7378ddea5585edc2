"""Versions and rollback against two real `sgt serve` processes on one database (SQLite file and
PostgreSQL): the first with the embedded trainer, the second API only. A rollback through one
process is served at once by the other, which had the newer weights in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_server import SgtServer, assert_error, register_user

from factories import make_pairs
from pg_support import PostgresDatabases

pytestmark = pytest.mark.e2e

SYSTEM_KEY = "e2e-versions-key"
PROBE = [[0.1, -0.4, 0.9], [0.7, 0.2, -0.3], [-1.0, 1.0, 0.0]]
VERSIONS = "/public/list_sgt_model_versions"
ROLLBACK = "/public/rollback_sgt_model"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def servers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SgtServer, SgtServer]]:
    root: Path = tmp_path_factory.mktemp(f"versions-{request.param}")
    if request.param == "sqlite":
        yield from _two_servers(root, f"sqlite:///{root / 'shared.db'}")
        return
    databases = PostgresDatabases()
    try:
        with databases.fresh() as url:
            yield from _two_servers(root, url)
    finally:
        databases.close()


def _two_servers(root: Path, url: str) -> Iterator[tuple[SgtServer, SgtServer]]:
    first = SgtServer(root / "first", system_key=SYSTEM_KEY, SGT_DATABASE_URL=url)
    second = SgtServer(
        root / "second", system_key=SYSTEM_KEY, SGT_DATABASE_URL=url, SGT_EMBEDDED_TRAINER="false"
    )
    first.start()
    try:
        second.start()
        try:
            yield first, second
        finally:
            second.close()
    finally:
        first.close()


def test_list_rollback_upload_and_delete_across_two_api_processes(
    servers: tuple[SgtServer, SgtServer],
) -> None:
    first, second = servers
    on_first = register_user(first, "artist")
    on_second = register_user(second, "unused")
    on_second.secret_id, on_second.secret_key = on_first.secret_id, on_first.secret_key
    # A single-family type: what is versioned does not depend on the type, and `std`'s blends
    # cross-validate on these few rows (three trainings took most of this test's 35 s).
    on_first.create("arm", model_type="gp")
    assert on_first.ok(VERSIONS, name="arm", app_name="app") == []

    on_first.upload("arm", make_pairs(40, seed=1))
    on_first.wait_for_state("arm", "converged")
    good = on_first.run("arm", PROBE)
    # Data of another function: the "bad upload" an artist wants to undo.
    bad_data = [[x, [-5.0 * value for value in y]] for x, y in make_pairs(40, seed=2)]
    on_first.upload("arm", bad_data)
    on_first.wait_for_state("arm", "converged")
    bad = on_second.run("arm", PROBE)
    assert bad != good
    assert on_first.run("arm", PROBE) == bad  # both processes now hold version 2 in memory

    listed = on_second.ok(VERSIONS, name="arm", app_name="app")
    assert [(v["version"], v["sample_count"], v["served"]) for v in listed] == [
        (2, 80, True),
        (1, 40, False),
    ]
    assert listed[0]["created_at"] >= listed[1]["created_at"]
    assert all(isinstance(v["val_loss"], float) for v in listed)

    assert on_first.ok(ROLLBACK, name="arm", app_name="app", version=1) is None
    assert on_second.run("arm", PROBE) == good, "the other process serves version 1 at once"
    assert on_first.run("arm", PROBE) == good
    served = [v["served"] for v in on_second.ok(VERSIONS, name="arm", app_name="app")]
    assert served == [False, True]
    assert_error(
        on_second.post(ROLLBACK, name="arm", app_name="app", version=9),
        "FindModelException",
        "version 9",
    )

    on_second.upload("arm", make_pairs(40, seed=3))
    status = on_first.wait_for_state("arm", "converged")
    assert status["trained_sample_count"] == 120
    listed = on_first.ok(VERSIONS, name="arm", app_name="app")
    assert [(v["version"], v["served"]) for v in listed] == [(3, True), (2, False), (1, False)]
    assert on_second.run("arm", PROBE) == on_first.run("arm", PROBE)

    on_second.ok("/public/delete_sgt_model", name="arm", app_name="app")
    assert_error(on_first.post(VERSIONS, name="arm", app_name="app"), "FindModelException")
    on_first.create("arm")
    assert on_first.ok(VERSIONS, name="arm", app_name="app") == [], "nothing survives a delete"
