"""Fresh PostgreSQL databases for tests, cloned from one migrated template per test run.

The server is the local one (`SGT_TEST_PG_URL`, default postgresql://postgres@127.0.0.1:5432).
Every run names its databases `sgt_test_<pid>_<random>_*`, so runs never share one; they are
dropped at the end of the run (in a background thread as tests go, because DROP DATABASE waits
for a checkpoint), and databases left behind by runs whose process is gone are dropped at the
start of the next. When the server is unreachable, the tests that need it fail; they never skip.

The e2e suite can run its server on PostgreSQL too: with `SGT_TEST_DATABASE_URL=postgres` (or
`SGT_E2E_BACKEND=postgres`) `e2e_database_url()` returns the URL of a fresh database of this run.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import make_url

from sgt.storage.engine import Database
from sgt.storage.schema import migrate

DEFAULT_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NAME_PATTERN = re.compile(r"^sgt_test_(\d+)_[0-9a-f]+_")


# Read once at import: the root conftest removes every SGT_* variable before each test runs.
_SERVER_URL = os.environ.get("SGT_TEST_PG_URL") or DEFAULT_SERVER_URL
_E2E_CHOICE = os.environ.get("SGT_TEST_DATABASE_URL") or os.environ.get("SGT_E2E_BACKEND") or ""


def server_url() -> str:
    """SQLAlchemy URL of the maintenance database of the test server."""
    return _SERVER_URL


def database_url(name: str) -> str:
    """SQLAlchemy URL of database `name` on the test server."""
    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    url = make_url(server_url()).set(drivername="postgresql")
    try:
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL is required for the tests marked 'postgres' and is unreachable at "
            f"{url.render_as_string(hide_password=True)} ({error}). Start it (.ci/run does) or set "
            "SGT_TEST_PG_URL.",
            pytrace=False,
        )


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PostgresDatabases:
    """Hands out fresh databases cloned from a template migrated once; drops them all at close."""

    def __init__(self) -> None:
        self.prefix = f"sgt_test_{os.getpid()}_{secrets.token_hex(4)}_"
        self.template = f"{self.prefix}template"
        self._count = 0
        self._admin = _admin_connection()
        self._drop_queue: queue.Queue[str | None] = queue.Queue()
        self._dropper = threading.Thread(target=self._drop_in_background, daemon=True)
        self._dropper.start()
        self._drop_abandoned()
        self._run_admin(f'CREATE DATABASE "{self.template}"')
        db = Database(database_url(self.template))
        try:
            migrate(db)
        finally:
            db.dispose()  # no connection may stay on a template while it is cloned

    def create(self) -> str:
        """A new migrated database of this run; returns its SQLAlchemy URL."""
        self._count += 1
        name = f"{self.prefix}{self._count}"
        self._run_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return database_url(name)

    def drop_later(self, url: str) -> None:
        """Drop the database (after its users disconnect; WITH FORCE ends stragglers)."""
        self._drop_queue.put(make_url(url).database)

    @contextmanager
    def fresh(self) -> Iterator[str]:
        url = self.create()
        try:
            yield url
        finally:
            self.drop_later(url)

    def close(self) -> None:
        self._drop_queue.put(self.template)
        self._drop_queue.put(None)
        self._dropper.join()
        self._admin.close()

    def _run_admin(self, statement: str) -> None:
        self._admin = _run_reconnecting(self._admin, statement)

    def _drop_in_background(self) -> None:
        connection = _admin_connection()
        try:
            while (name := self._drop_queue.get()) is not None:
                connection = _run_reconnecting(
                    connection, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                )
        finally:
            connection.close()

    def _drop_abandoned(self) -> None:
        names = [row[0] for row in self._admin.execute("SELECT datname FROM pg_database")]
        for name in names:
            match = NAME_PATTERN.match(str(name))
            if match and not _is_alive(int(match.group(1))):
                self._drop_queue.put(str(name))


def _run_reconnecting(
    connection: psycopg.Connection[tuple[object, ...]], statement: str
) -> psycopg.Connection[tuple[object, ...]]:
    """Run `statement`, on a new connection if the server dropped this one (a test may restart
    PostgreSQL); returns the connection to use from now on."""
    try:
        connection.execute(statement)
        return connection
    except psycopg.OperationalError:
        if not connection.closed and not connection.broken:
            raise
    connection.close()
    fresh = _admin_connection()
    fresh.execute(statement)
    return fresh


def wants_postgres_e2e() -> bool:
    """True when the e2e suite should run its server on PostgreSQL."""
    return _E2E_CHOICE.lower() in {"postgres", "postgresql", "pg"}
