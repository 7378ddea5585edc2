"""Engines and transactions: SQLite pragmas, the PostgreSQL pool, and the unit of work.

`Database.read()`, `Database.snapshot()` and `Database.write()` are the only places a transaction
opens and closes. On SQLite a write transaction starts with BEGIN IMMEDIATE, so two writers queue
on the lock instead of failing half way; readers never wait for writers (WAL). On PostgreSQL
transactions are READ COMMITTED (each statement sees what committed before it), except
`snapshot()`, which reads several tables as of one moment (REPEATABLE READ); writers that must
not race lock their rows (`FOR UPDATE`, see `sgt.storage.training`).

A failure inside a transaction leaves it as a domain error: `StorageUnavailable` when the database
is away or busy for now (`is_transient`: retrying later may succeed), `StorageError` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session as Session  # re-exported for type hints above storage
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

from sgt.errors import SgtError, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

# SQLSTATEs of a database that is away or busy for now: connection exceptions (class 08), too many
# connections, serialization failure, deadlock, lock not available, query cancelled (a lock or
# statement timeout), and a server shutting down, crashing or starting up (57P01..57P03).
TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "53300", "55P03", "57014", "57P01", "57P02", "57P03"}
)
# SQLite's words for a lock held too long (busy_timeout elapsed) and for a file it cannot reach.
TRANSIENT_SQLITE_MESSAGES = ("database is locked", "database table is locked", "disk i/o error")


def is_transient(error: BaseException) -> bool:
    """Whether `error` (from SQLAlchemy) says the database is away or busy for now rather than
    that the statement is wrong: retrying the same transaction later may succeed."""
    if isinstance(error, PoolTimeout):
        return True
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate.startswith("08") or sqlstate in TRANSIENT_SQLSTATES
    message = str(error.orig).lower()
    if any(words in message for words in TRANSIENT_SQLITE_MESSAGES):
        return True
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect or the server
    # closed the connection; SQLite's OperationalErrors without the words above are real errors.
    return isinstance(error, OperationalError) and type(error.orig).__module__.startswith("psycopg")


def make_engine(url: str) -> Engine:
    """An engine for `url`, tuned for its backend."""
    if url.startswith("sqlite"):
        return _make_sqlite_engine(url)
    # pre_ping: a server restart or an idle-connection reaper never fails the next request.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800)


def _make_sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False},
        poolclass=NullPool if ":memory:" in url else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE is ours to send.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # auto_vacuum only takes effect on a new file, before the first table exists.
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a 200 on upload means on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted samples are overwritten, not left
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """The engine and the unit of work every repository function runs inside."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        write_engine = (
            self.engine.execution_options(sqlite_immediate=True) if self.is_sqlite else self.engine
        )
        snapshot_engine = (
            self.engine.execution_options(isolation_level="REPEATABLE READ")
            if self.is_postgres
            else self.engine
        )
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._snapshot_sessions = sessionmaker(snapshot_engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction for reads. It ends with a commit (nothing to write) rather than a
        rollback, because a rollback would expire the rows the caller goes on reading."""
        with self._transaction(self._read_sessions) as session:
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[Session]:
        """A read transaction in which every statement sees the same committed state (SQLite
        read transactions always do; PostgreSQL needs REPEATABLE READ for it)."""
        with self._transaction(self._snapshot_sessions) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends without error, else rolls back."""
        with self._transaction(self._write_sessions) as session:
            yield session

    @contextmanager
    def quick_read(self) -> Iterator[Connection]:
        """A plain connection for the one-row reads every request makes (its key, the model to
        run): about 0.06 ms a read, where a read session costs 0.2-0.3 ms of unit-of-work and
        row-object overhead (docs/corrective_shapes.md). It ends with a rollback: nothing is
        written, and the rows read are plain tuples that nothing expires."""
        try:
            with self.engine.connect() as connection:
                yield connection
        except (DBAPIError, PoolTimeout) as error:
            raise _storage_error(error) from error

    @contextmanager
    def _transaction(self, factory: sessionmaker[Session]) -> Iterator[Session]:
        session = factory()
        try:
            yield session
            session.commit()
        except SgtError:
            session.rollback()
            raise
        except (DBAPIError, PoolTimeout) as error:
            _rollback_quietly(session)
            raise _storage_error(error) from error
        except BaseException:
            _rollback_quietly(session)
            raise
        finally:
            session.close()

    def has_idle_connection(self) -> bool:
        """Whether a read could start now on a pooled connection, without waiting for one to
        come back or opening a new one (a pool without idle connections says False)."""
        checked_in = getattr(self.engine.pool, "checkedin", None)
        return callable(checked_in) and int(checked_in()) > 0

    def now(self, session: Session) -> datetime:
        """The database clock, naive UTC: leases and timestamps never trust a machine's clock."""
        return database_now(session)

    def ping(self) -> bool:
        """Whether the database answers a trivial query."""
        try:
            with self.read() as session:
                session.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means not reachable
            return False
        return True

    def reclaim_space(self) -> None:
        """Give freed pages back to the file system (SQLite); a no-op elsewhere.

        secure_delete zeroes freed pages in the main file, but the write-ahead log still holds
        the frames the deleted rows were written in until a checkpoint copies them back:
        truncating the log after the vacuum leaves no byte of them in any file.
        """
        if self.is_sqlite:
            with self.engine.begin() as connection:
                connection.exec_driver_sql("PRAGMA incremental_vacuum")
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def dispose(self) -> None:
        self.engine.dispose()


def first_line(error: BaseException) -> str:
    """The driver's message of `error`, first line only (psycopg's run over several)."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    text_lines = str(cause).strip().splitlines()
    return text_lines[0] if text_lines else type(cause).__name__


def _storage_error(error: DBAPIError | PoolTimeout) -> StorageError:
    """The domain error for a failed statement: StorageUnavailable when retrying may succeed."""
    if is_transient(error):
        # No traceback: an outage is expected, and whoever retries logs it once.
        log.debug("database unavailable: %s", first_line(error))
        return StorageUnavailable("the database is unavailable")
    log.exception("database error")
    return StorageError("the database failed")


def _rollback_quietly(session: Session) -> None:
    """Roll back; on a connection that is already gone the rollback fails too, and the error
    that matters is the one being handled."""
    try:
        session.rollback()
    except (DBAPIError, PoolTimeout):
        pass


def database_now(session: Session) -> datetime:
    """The database server's clock at this moment, as naive UTC.

    On PostgreSQL this is `clock_timestamp()`, not `now()`: `now()` is frozen at the start of the
    transaction, so a time read after taking a row lock could be earlier than the commit of the
    transaction that released it, and lease history would show overlaps that never happened.
    """
    if session.get_bind().dialect.name == "sqlite":
        value = session.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        return datetime.fromisoformat(value)
    value = session.execute(text("SELECT clock_timestamp() AT TIME ZONE 'utc'")).scalar_one()
    assert isinstance(value, datetime)
    return value
