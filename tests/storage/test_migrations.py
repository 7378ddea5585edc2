"""Migrations on both backends: down and up again keep every row, and ids are never reused."""

from __future__ import annotations

from sqlalchemy import func, select
from test_storage_contract import add_model, add_user, checkpoint, claim, finish, upload

from sgt.storage import models, samples, versions
from sgt.storage.engine import Database
from sgt.storage.schema import downgrade, is_up_to_date, migrate
from sgt.storage.tables import (
    CheckpointRow,
    LeaseLogRow,
    ModelVersionRow,
    SampleBatchRow,
    TrainingRow,
)

TABLES = (SampleBatchRow, CheckpointRow, TrainingRow, LeaseLogRow)


def row_counts(db: Database) -> dict[str, int]:
    with db.read() as session:
        return {
            table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in TABLES
        }


def test_rebuilding_the_models_table_keeps_every_row_and_cascade(db: Database) -> None:
    # The rows are written at head (the ORM knows only head's columns), then taken down to
    # before the rebuild and up again.
    owner = add_user(db)
    kept, last = add_model(db, owner), add_model(db, owner)
    for model_id in (kept, last):
        upload(db, model_id)
    held = claim(db, "w1")
    assert held is not None and checkpoint(db, held, "w1", b"weights")
    before = row_counts(db)
    downgrade(db, "0002")
    assert not is_up_to_date(db)
    assert row_counts(db) == before

    migrate(db)

    assert is_up_to_date(db)
    assert row_counts(db) == before
    with db.write() as session:
        models.delete_model(session, last)
    # Foreign keys are back on: the delete cascaded, the other model's rows are all there.
    with db.read() as session:
        assert samples.count_samples(session, last) == 0
        assert samples.count_samples(session, kept) == 4
    assert add_model(db, owner) > last  # the deleted model's id is not handed out again


def test_the_checkpoint_of_a_converged_model_becomes_its_served_version_1(db: Database) -> None:
    # Rows are written at head (the ORM knows only the newest columns), then the schema goes
    # back to before model_versions existed, dropping the versions those writes recorded.
    owner = add_user(db)
    converged, training, untrained = (
        add_model(db, owner),
        add_model(db, owner),
        add_model(db, owner),
    )
    upload(db, converged)
    held = claim(db, "w1")
    assert held is not None and held.model_id == converged
    assert checkpoint(db, held, "w1", b"converged") and finish(db, held, "w1")
    upload(db, training)
    held = claim(db, "w1")
    assert held is not None and checkpoint(db, held, "w1", b"half-trained")
    downgrade(db, "0004")

    migrate(db)

    with db.read() as session:
        assert versions.list_versions(session, training) == []
        assert versions.list_versions(session, untrained) == []
        [info] = versions.list_versions(session, converged)
        kept = session.get_one(ModelVersionRow, (converged, 1))
    assert (info.version, info.sample_count, info.is_served) == (1, 4, True)
    assert kept.weights == b"converged"
