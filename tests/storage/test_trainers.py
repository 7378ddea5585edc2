"""Trainers' heartbeat rows and storage errors, on both backends: a beat records who trains
what by the database clock, a clean stop removes the row, silent rows are pruned, and the unit of
work says which failures are transient (`StorageUnavailable`) and which are not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update
from test_storage_contract import add_model, add_user

from pg_support import PostgresDatabases
from sgt.errors import StorageError, StorageUnavailable
from sgt.storage import trainers
from sgt.storage.engine import Database
from sgt.storage.queue import PRUNE_SILENT_TRAINERS_SECONDS, TrainingQueue
from sgt.storage.schema import downgrade, migrate
from sgt.storage.tables import TrainerRow


def listed(db: Database) -> list[trainers.TrainerBeat]:
    with db.read() as session:
        return trainers.list_trainers(session, now=db.now(session))


def age_row(db: Database, name: str, seconds: float) -> None:
    """Move a trainer's last beat `seconds` into the past (as if it had been silent so long)."""
    with db.write() as session:
        row = session.get(TrainerRow, name)
        assert row is not None
        session.execute(
            update(TrainerRow)
            .where(TrainerRow.name == name)
            .values(last_beat_at=row.last_beat_at - timedelta(seconds=seconds))
        )


def test_a_beat_records_the_trainer_and_its_model_and_a_clean_stop_removes_it(
    db: Database,
) -> None:
    model_id = add_model(db, add_user(db))
    queue = TrainingQueue(db, worker_name="host:1:a", lease_seconds=30.0, restarts=2)
    queue.beat(None)
    [idle] = listed(db)
    assert (idle.name, idle.model_id, idle.model_name, idle.restarts) == ("host:1:a", None, None, 2)
    assert idle.age_seconds < 60 and idle.started_at == idle.last_beat_at

    queue.beat(model_id)
    [busy] = listed(db)
    assert busy.model_id == model_id and busy.model_name is not None
    assert busy.last_beat_at >= idle.last_beat_at and busy.started_at == idle.started_at

    queue.leave()
    assert listed(db) == []


def test_rows_of_silent_trainers_age_and_are_pruned_by_the_next_beat(db: Database) -> None:
    killed = TrainingQueue(db, worker_name="killed", lease_seconds=30.0)
    killed.beat(None)
    age_row(db, "killed", 120)
    [row] = listed(db)
    assert row.age_seconds >= 120, "age is judged by the database clock"

    age_row(db, "killed", PRUNE_SILENT_TRAINERS_SECONDS)
    TrainingQueue(db, worker_name="alive", lease_seconds=30.0).beat(None)
    assert [trainer.name for trainer in listed(db)] == ["alive"]


def test_the_trainers_table_comes_and_goes_with_its_migration(db: Database) -> None:
    downgrade(db, "0003")
    with pytest.raises(StorageError):
        listed(db)
    migrate(db)
    assert listed(db) == []


# Both kinds of read: a session, and the plain connection of a request's key and model.
READS = ["read", "quick_read"]


@pytest.mark.parametrize("read", READS)
def test_a_failed_statement_is_a_storage_error_but_not_a_transient_one(
    db: Database, read: str
) -> None:
    with pytest.raises(StorageError) as raised, getattr(db, read)() as reader:
        reader.execute(text("SELECT * FROM no_such_table"))
    assert not isinstance(raised.value, StorageUnavailable)


@pytest.mark.parametrize("read", READS)
def test_an_unreachable_server_is_transient(read: str) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    try:
        with pytest.raises(StorageUnavailable), getattr(db, read)() as reader:
            reader.execute(text("SELECT 1"))
    finally:
        db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sqlstate", "is_transient"),
    [
        ("40001", True),  # serialization failure
        ("40P01", True),  # deadlock detected
        ("55P03", True),  # lock not available (lock_timeout)
        ("57014", True),  # query cancelled (statement_timeout)
        ("57P01", True),  # the server is shutting down
        ("57P03", True),  # the server is starting up
        ("22012", False),  # division by zero: the statement is wrong
    ],
)
def test_postgres_errors_are_classified_by_sqlstate(
    pg_databases: PostgresDatabases, sqlstate: str, is_transient: bool
) -> None:
    url = pg_databases.create()
    db = Database(url)
    raise_it = f"DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '{sqlstate}'; END $$"
    try:
        with pytest.raises(StorageError) as raised, db.write() as session:
            session.execute(text(raise_it))
    finally:
        db.dispose()
        pg_databases.drop_later(url)
    assert isinstance(raised.value, StorageUnavailable) is is_transient


@pytest.mark.postgres
@pytest.mark.parametrize("read", READS)
def test_a_connection_the_server_ended_is_transient(
    pg_databases: PostgresDatabases, read: str
) -> None:
    url = pg_databases.create()
    db = Database(url)
    try:
        with pytest.raises(StorageUnavailable), getattr(db, read)() as reader:
            pid = reader.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with db.engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                other.commit()
            reader.execute(text("SELECT 1"))
        with getattr(db, read)() as reader:  # the pool hands out a fresh connection afterwards
            assert reader.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        db.dispose()
        pg_databases.drop_later(url)
