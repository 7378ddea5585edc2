"""Fresh PostgreSQL databases for the cluster tests (see `pg_support`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg_support import PostgresDatabases


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    yield databases
    databases.close()
