"""A fresh database of each backend per test: a new SQLite file, or a PostgreSQL database cloned
from this run's migrated template (see `pg_support`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pg_support import PostgresDatabases
from sgt.storage.engine import Database
from sgt.storage.schema import migrate

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty, migrated database of the parametrised backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sgt.db'}"
        db = Database(url)
        migrate(db)
        db.dispose()
        yield url
        return
    databases: PostgresDatabases = request.getfixturevalue("pg_databases")
    with databases.fresh() as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    opened = Database(database_url)
    yield opened
    opened.dispose()
