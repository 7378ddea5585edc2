"""The training queue on a real SQLite file: exclusive leased claims, renewal, checkpoints only
under a held lease, and how a run ends."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from factories import make_model, make_samples, make_user
from sgt.domain.training import TrainingState
from sgt.services import models, samples
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import training as queue
from sgt.storage.tables import ModelRow, TrainingRow

LEASE_SECONDS = 30.0


@pytest.fixture
def user(ctx: ServiceContext) -> CurrentUser:
    return make_user(ctx, secret_id="alice")


def queued_model(ctx: ServiceContext, user: CurrentUser, name: str, rows: int = 5) -> int:
    make_model(ctx, user, name=name)
    samples.upload_samples(ctx, user, app_name="app", name=name, train_data=make_samples(rows))
    with ctx.db.read() as session:
        return session.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar_one()


def now_of(ctx: ServiceContext) -> datetime:
    with ctx.db.read() as session:
        return ctx.db.now(session)


def claim(ctx: ServiceContext, worker: str, *, at: datetime | None = None) -> queue.Claim | None:
    with ctx.db.write() as session:
        return queue.claim_model_to_train(
            session, worker=worker, now=at or ctx.db.now(session), lease_seconds=LEASE_SECONDS
        )


def renew(ctx: ServiceContext, held: queue.Claim, worker: str) -> int | None:
    with ctx.db.write() as session:
        return queue.renew_lease(
            session, claim=held, worker=worker, now=ctx.db.now(session), lease_seconds=LEASE_SECONDS
        )


def checkpoint(ctx: ServiceContext, held: queue.Claim, worker: str, weights: bytes) -> bool:
    with ctx.db.write() as session:
        return queue.save_checkpoint(
            session,
            claim=held,
            worker=worker,
            now=ctx.db.now(session),
            model_type="std",
            weights=weights,
            trained_sample_count=5,
            progress=queue.Progress(steps=10, train_loss=0.5, val_loss=0.6),
        )


def finish(ctx: ServiceContext, held: queue.Claim, worker: str) -> bool:
    with ctx.db.write() as session:
        return queue.finish_run(
            session,
            claim=held,
            worker=worker,
            now=ctx.db.now(session),
            trained_data_version=held.data_version,
            progress=queue.Progress(steps=20, train_loss=0.1, val_loss=0.2),
        )


def state_of(ctx: ServiceContext, model: int) -> TrainingRow:
    with ctx.db.read() as session:
        return session.get_one(TrainingRow, model)


def stored_weights(ctx: ServiceContext, model: int) -> bytes | None:
    with ctx.db.read() as session:
        row = checkpoint_store.load_checkpoint(session, model)
        return None if row is None else row.weights


def test_nothing_to_claim_without_uploads(ctx: ServiceContext, user: CurrentUser) -> None:
    make_model(ctx, user, name="idle")
    assert claim(ctx, "w1") is None


def test_a_claim_is_exclusive(ctx: ServiceContext, user: CurrentUser) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None and held.model_id == model
    assert (held.in_size, held.out_size, held.model_type) == (3, 2, "std")
    assert claim(ctx, "w2") is None
    row = state_of(ctx, model)
    assert (row.state, row.lease_owner) == (TrainingState.TRAINING, "w1")


def test_the_longest_waiting_model_is_claimed_first(ctx: ServiceContext, user: CurrentUser) -> None:
    first = queued_model(ctx, user, "first")
    second = queued_model(ctx, user, "second")
    samples.upload_samples(ctx, user, app_name="app", name="first", train_data=make_samples(2))
    claims = [claim(ctx, "w1"), claim(ctx, "w2")]
    assert [c.model_id for c in claims if c] == [first, second]


def test_an_expired_lease_is_taken_over_and_the_old_holder_writes_nothing(
    ctx: ServiceContext, user: CurrentUser
) -> None:
    model = queued_model(ctx, user, "m")
    old = claim(ctx, "w1")
    assert old is not None
    assert claim(ctx, "w2", at=now_of(ctx) + timedelta(seconds=LEASE_SECONDS / 2)) is None
    new = claim(ctx, "w2", at=now_of(ctx) + timedelta(seconds=LEASE_SECONDS + 1))
    assert new is not None and new.model_id == model
    assert renew(ctx, old, "w1") is None
    assert checkpoint(ctx, old, "w1", b"stale") is False
    assert stored_weights(ctx, model) is None
    assert finish(ctx, old, "w1") is False
    assert state_of(ctx, model).lease_owner == "w2"
    assert checkpoint(ctx, new, "w2", b"fresh") is True
    assert stored_weights(ctx, model) == b"fresh"


def test_renewal_reports_the_data_version(ctx: ServiceContext, user: CurrentUser) -> None:
    queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    assert renew(ctx, held, "w1") == held.data_version
    samples.upload_samples(ctx, user, app_name="app", name="m", train_data=make_samples(3))
    assert renew(ctx, held, "w1") == held.data_version + 1
    assert state_of(ctx, held.model_id).state == TrainingState.TRAINING, "upload keeps the lease"


def test_after_delete_the_lease_is_lost_and_nothing_is_written(
    ctx: ServiceContext, user: CurrentUser
) -> None:
    queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    models.delete_model(ctx, user, app_name="app", name="m")
    assert renew(ctx, held, "w1") is None
    assert checkpoint(ctx, held, "w1", b"ghost") is False
    assert finish(ctx, held, "w1") is False
    assert stored_weights(ctx, held.model_id) is None
    with ctx.db.read() as session:
        assert session.get(TrainingRow, held.model_id) is None
        assert session.get(ModelRow, held.model_id) is None


def test_a_checkpoint_under_the_lease_records_progress(
    ctx: ServiceContext, user: CurrentUser
) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    assert checkpoint(ctx, held, "w1", b"v1") is True
    assert checkpoint(ctx, held, "w1", b"v2") is True
    assert stored_weights(ctx, model) == b"v2"
    with ctx.db.read() as session:
        assert checkpoint_store.checkpoint_version(session, model) == 2
        status = queue.read_status(session, model)
    assert (status.steps, status.train_loss, status.val_loss) == (10, 0.5, 0.6)
    assert status.trained_sample_count == 5
    assert status.loss_history == [[10.0, 0.5, 0.6], [10.0, 0.5, 0.6]]


def test_finish_marks_converged_when_no_data_arrived(
    ctx: ServiceContext, user: CurrentUser
) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None and finish(ctx, held, "w1") is True
    row = state_of(ctx, model)
    assert (row.state, row.lease_owner, row.steps) == (TrainingState.CONVERGED, None, 20)
    assert claim(ctx, "w1") is None, "a converged model costs no trainer"


def test_finish_requeues_when_data_arrived_during_the_run(
    ctx: ServiceContext, user: CurrentUser
) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    samples.upload_samples(ctx, user, app_name="app", name="m", train_data=make_samples(2))
    assert finish(ctx, held, "w1") is True
    row = state_of(ctx, model)
    assert (row.state, row.lease_owner, row.sample_count) == (TrainingState.QUEUED, None, 7)
    again = claim(ctx, "w2")
    assert again is not None and again.model_id == model
    assert again.data_version == held.data_version + 1


def test_a_released_model_goes_back_to_the_queue(ctx: ServiceContext, user: CurrentUser) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    with ctx.db.write() as session:
        queue.release_model(session, claim=held, worker="w1", now=ctx.db.now(session))
    row = state_of(ctx, model)
    assert (row.state, row.lease_owner) == (TrainingState.QUEUED, None)
    again = claim(ctx, "w2")
    assert again is not None and again.model_id == model


def test_clear_during_a_run_drops_the_lease(ctx: ServiceContext, user: CurrentUser) -> None:
    model = queued_model(ctx, user, "m")
    held = claim(ctx, "w1")
    assert held is not None
    samples.clear_samples(ctx, user, app_name="app", name="m")
    assert renew(ctx, held, "w1") is None
    assert checkpoint(ctx, held, "w1", b"after-clear") is False
    row = state_of(ctx, model)
    assert (row.state, row.sample_count) == (TrainingState.UNTRAINED, 0)
