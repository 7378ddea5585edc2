"""Waking idle trainers when work appears, without busy polling.

On PostgreSQL every transaction that makes a model claimable (an upload, a run handed back to the
queue) also sends `NOTIFY sgt_training`; PostgreSQL delivers it to listeners when, and only when,
that transaction commits. An idle trainer sleeps in `select()` on its LISTEN connection and on a
self-pipe (so `wake()` from a signal handler ends the wait at once), with a timeout as the
baseline: notifications only shorten the wait, they are never needed for correctness. On SQLite
there is nothing to listen to and the timeout alone paces the trainer.

A LISTEN connection lost with the server (a restart) is opened again by the next `wait()`; while
the server is away each wait tries once, and only the first failure and the recovery are logged.
"""

from __future__ import annotations

import logging
import os
import select

import psycopg
from sqlalchemy import make_url, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "sgt_training"
CONNECT_TIMEOUT_SECONDS = 5  # an unreachable host must not hold a trainer's wait for minutes


def announce_work(session: Session) -> None:
    """Tell listening trainers that a model became claimable, once this transaction commits."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def libpq_conninfo(database_url: str) -> str:
    """The libpq form of a `postgresql+psycopg://` SQLAlchemy URL."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class WorkSignal:
    """What an idle trainer waits on: a timeout, a `wake()`, or (PostgreSQL) a notification."""

    def __init__(self, database_url: str) -> None:
        is_postgres = make_url(database_url).get_backend_name() == "postgresql"
        self._conninfo = libpq_conninfo(database_url) if is_postgres else None
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._has_failed = False  # the last attempt to listen failed (and was logged)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)

    @property
    def is_listening(self) -> bool:
        return self._connection is not None and not self._connection.closed

    def listen(self) -> bool:
        """Start listening (PostgreSQL); call before looking for work, so that nothing committed
        after the look is missed. False when there is nothing to listen to, or it failed."""
        if self._conninfo is None:
            return False
        if self.is_listening:
            return True
        try:
            self._connection = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
            self._connection.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as error:
            if not self._has_failed:
                log.warning("cannot LISTEN for new work (%s); polling until it can", _line(error))
            self._has_failed = True
            self._close_connection()
            return False
        if self._has_failed:
            log.info("listening for new work again")
        self._has_failed = False
        return True

    def wait(self, timeout_seconds: float) -> None:
        """Block until work may be waiting: a notification, `wake()`, or the timeout."""
        if self._conninfo is not None and not self.is_listening and self.listen():
            return  # listening again, but notifications may have been missed: look at once
        sources = [self._wake_read]
        if self._connection is not None:
            sources.append(self._connection.fileno())
        ready, _, _ = select.select(sources, [], [], max(0.0, timeout_seconds))
        if self._wake_read in ready:
            self._drain_wake_pipe()
        if self._connection is not None and self._connection.fileno() in ready:
            self._drain_notifications()

    def wake(self) -> None:
        """End the current or next `wait()` now; safe to call from a signal handler."""
        try:
            os.write(self._wake_write, b"\0")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (a wake is already pending) or closed

    def close(self) -> None:
        self._close_connection()
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def _drain_notifications(self) -> None:
        assert self._connection is not None
        try:
            for _ in self._connection.notifies(timeout=0):
                pass
        except psycopg.Error as error:
            log.warning("lost the LISTEN connection (%s); reconnecting", _line(error))
            self._close_connection()

    def _close_connection(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
        self._connection = None


def _line(error: psycopg.Error) -> str:
    """psycopg's message, first line only (its messages run over several)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
