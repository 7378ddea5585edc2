"""Migrations on both backends: down and up again keep every row, and ids are never reused."""

from __future__ import annotations

from sqlalchemy import func, select
from test_storage_contract import add_model, add_user, checkpoint, claim, upload

from sgt.storage import models, samples
from sgt.storage.engine import Database
from sgt.storage.schema import downgrade, is_up_to_date, migrate
from sgt.storage.tables import CheckpointRow, LeaseLogRow, SampleBatchRow, TrainingRow

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
