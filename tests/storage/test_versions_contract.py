"""The versions contract (`sgt.storage.versions`) on SQLite and on PostgreSQL: a converged
finish records a version in its own transaction, all but the newest K are pruned, the list is
newest first, a rollback switches the served checkpoint and always wins over a finish, delete
removes every version, clone copies only the served one. Driven through the services as the API
drives them, and through a real `TrainingQueue` as a trainer does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from factories import SYSTEM_KEY, make_model, make_user
from sgt.config import Settings
from sgt.domain.training import TrainingState, ValidationErrors
from sgt.errors import ModelNotFound
from sgt.services import models, samples, versions
from sgt.services.context import ServiceContext, open_context
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints
from sgt.storage import training as training_rows
from sgt.storage.queue import Progress, TrainingQueue
from sgt.storage.tables import ModelRow, ModelVersionRow

KEEP = 3


@pytest.fixture
def ctx(database_url: str, tmp_path: Path) -> Iterator[ServiceContext]:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, system_key=SYSTEM_KEY
    )
    opened = open_context(settings, run_migrations=False)
    yield opened
    opened.close()


@pytest.fixture
def alice(ctx: ServiceContext) -> CurrentUser:
    return make_user(ctx, secret_id="alice")


def queue(ctx: ServiceContext, worker: str = "w1") -> TrainingQueue:
    return TrainingQueue(ctx.db, worker_name=worker, lease_seconds=30.0, keep_versions=KEEP)


def upload(ctx: ServiceContext, user: CurrentUser, name: str, rows: int = 4) -> None:
    inputs = np.arange(rows * 3, dtype=np.float32).reshape(rows, 3)
    samples.upload_samples(ctx, user, app_name="app", name=name, train_data=(inputs, inputs[:, :2]))


def train(ctx: ServiceContext, weights: bytes, *, val_loss: float = 0.25) -> bool:
    """One trainer run: claim, one checkpoint of `weights`, finish; what finish returned."""
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None
    data = trainer.load(claim)
    assert data is not None
    progress = Progress(steps=10, train_loss=0.5, val_loss=val_loss)
    trainer.save_checkpoint(
        claim,
        model_type="std",
        weights=weights,
        trained_sample_count=len(data.inputs),
        progress=progress,
        errors=ValidationErrors(
            rows=2,
            mae=val_loss,
            p95_abs_error=val_loss,
            max_abs_error=val_loss,
            mae_per_output=None,
        ),
    )
    return trainer.finish(claim, trained_data_version=data.data_version, progress=progress)


def upload_and_train(ctx: ServiceContext, user: CurrentUser, name: str, weights: bytes) -> None:
    upload(ctx, user, name)
    assert train(ctx, weights)


def model_id(ctx: ServiceContext, name: str) -> int:
    with ctx.db.read() as session:
        return session.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar_one()


def served_weights(ctx: ServiceContext, name: str) -> bytes:
    with ctx.db.read() as session:
        row = checkpoints.load_checkpoint(session, model_id(ctx, name))
        assert row is not None
        return row.weights


def listed(ctx: ServiceContext, user: CurrentUser, name: str) -> list[tuple[int, bool]]:
    kept = versions.list_versions(ctx, user, app_name="app", name=name)
    return [(info.version, info.is_served) for info in kept]


def test_a_converged_finish_records_a_version_with_its_time_samples_and_error(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    assert versions.list_versions(ctx, alice, app_name="app", name="arm") == []
    with ctx.db.read() as session:
        before = ctx.db.now(session)

    upload_and_train(ctx, alice, "arm", b"v1")

    [info] = versions.list_versions(ctx, alice, app_name="app", name="arm")
    assert (info.version, info.sample_count, info.val_loss, info.is_served) == (1, 4, 0.25, True)
    assert before <= info.created_at <= before + timedelta(minutes=5)
    assert info.created_at.tzinfo is None  # naive UTC, like every time the database keeps


def test_a_finish_with_newer_data_records_no_version(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    upload(ctx, alice, "arm")
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None
    upload(ctx, alice, "arm")  # arrives during the run: the finish queues the model again
    trainer.save_checkpoint(
        claim, model_type="std", weights=b"w", trained_sample_count=4, progress=Progress(1, 1, 1)
    )
    assert trainer.finish(claim, trained_data_version=claim.data_version, progress=None)
    assert listed(ctx, alice, "arm") == []


def test_a_finish_that_saved_nothing_new_records_no_second_version(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    upload_and_train(ctx, alice, "arm", b"v1")
    upload(ctx, alice, "arm")
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None
    assert trainer.finish(claim, trained_data_version=claim.data_version + 1, progress=None)
    assert listed(ctx, alice, "arm") == [(1, True)]


def test_versions_beyond_k_are_pruned_and_the_list_is_newest_first(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    for number in range(1, 6):
        upload_and_train(ctx, alice, "arm", f"v{number}".encode())

    assert listed(ctx, alice, "arm") == [(5, True), (4, False), (3, False)]
    with ctx.db.read() as session:
        stored = session.scalar(select(func.count()).select_from(ModelVersionRow))
    assert stored == KEEP


def test_rollback_serves_the_version_and_the_next_run_starts_from_it(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    for number in range(1, 4):
        upload(ctx, alice, "arm")
        assert train(ctx, f"v{number}".encode(), val_loss=number / 10)
    with ctx.db.read() as session:
        before = checkpoints.checkpoint_version(session, model_id(ctx, "arm"))

    versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=2)

    assert served_weights(ctx, "arm") == b"v2"
    assert listed(ctx, alice, "arm") == [(3, False), (2, True), (1, False)]
    with ctx.db.read() as session:
        after = checkpoints.checkpoint_version(session, model_id(ctx, "arm"))
        status = training_rows.read_status(session, model_id(ctx, "arm"))
    # A new checkpoint version: what every API process's cache keys its weights on.
    assert before is not None and after is not None and after > before
    assert (status.state, status.trained_sample_count) == (TrainingState.CONVERGED, 8)
    # The status describes the served weights again: version 2's loss and validation errors.
    assert (status.val_loss, status.val_mae, status.val_rows) == (0.2, 0.2, 2)

    upload(ctx, alice, "arm")
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None
    data = trainer.load(claim)
    assert data is not None and data.start is not None
    assert data.start.weights == b"v2"


def test_rollback_to_an_unknown_version_is_model_not_found_and_changes_nothing(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    upload_and_train(ctx, alice, "arm", b"v1")
    for version in (0, 2, -1):
        with pytest.raises(ModelNotFound, match=f"no version {version}"):
            versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=version)
    with pytest.raises(ModelNotFound):
        versions.roll_back_model(ctx, alice, app_name="app", name="leg", version=1)
    assert listed(ctx, alice, "arm") == [(1, True)]


def test_delete_removes_every_version(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="arm")
    make_model(ctx, alice, name="leg")
    for name in ("arm", "arm", "leg"):
        upload_and_train(ctx, alice, name, name.encode())

    models.delete_model(ctx, alice, app_name="app", name="arm")

    with ctx.db.read() as session:
        left = session.execute(select(ModelVersionRow.model_id)).scalars().all()
    assert left == [model_id(ctx, "leg")]


def test_clone_copies_only_the_served_version_as_its_version_1(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    for number in range(1, 4):
        upload_and_train(ctx, alice, "arm", f"v{number}".encode())
    versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=2)

    models.clone_model(
        ctx, alice, author_unique_id="alice", name="arm", app_name="app", new_name="copy"
    )

    [info] = versions.list_versions(ctx, alice, app_name="app", name="copy")
    assert (info.version, info.sample_count, info.val_loss, info.is_served) == (1, 8, 0.25, True)
    assert served_weights(ctx, "copy") == b"v2"
    versions.roll_back_model(ctx, alice, app_name="app", name="copy", version=1)
    assert served_weights(ctx, "copy") == b"v2"


def test_rollback_during_a_run_wins_over_its_finish(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    upload_and_train(ctx, alice, "arm", b"good")
    upload(ctx, alice, "arm")
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None

    versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=1)

    # The run's lease is gone: its checkpoint and finish write nothing.
    assert not trainer.save_checkpoint(
        claim, model_type="std", weights=b"bad", trained_sample_count=8, progress=Progress(1, 1, 1)
    )
    assert not trainer.finish(claim, trained_data_version=claim.data_version, progress=None)
    assert served_weights(ctx, "arm") == b"good"
    assert listed(ctx, alice, "arm") == [(1, True)]
    with ctx.db.read() as session:
        state = training_rows.read_status(session, model_id(ctx, "arm")).state
    assert state == TrainingState.CONVERGED  # the waiting data waits for the next upload


def test_rollback_racing_a_finish_wins_whichever_commits_first(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="arm")
    upload_and_train(ctx, alice, "arm", b"good")
    upload(ctx, alice, "arm")
    trainer = queue(ctx)
    claim = trainer.claim_next()
    assert claim is not None
    trainer.save_checkpoint(
        claim, model_type="std", weights=b"bad", trained_sample_count=8, progress=Progress(1, 1, 1)
    )
    finished: list[bool] = []
    racer = threading.Thread(
        target=lambda: finished.append(
            trainer.finish(claim, trained_data_version=claim.data_version, progress=None)
        )
    )
    racer.start()
    versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=1)
    racer.join()

    assert served_weights(ctx, "arm") == b"good"
    expected = [(1, True)] if finished == [False] else [(2, False), (1, True)]
    assert listed(ctx, alice, "arm") == expected
