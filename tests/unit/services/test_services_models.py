"""Model, sample and inference use cases on a real SQLite file."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest
from sqlalchemy import func, select

from factories import make_model, make_samples, make_user
from sgt.config import Settings
from sgt.domain.models import ModelSpec
from sgt.domain.training import TrainingState
from sgt.errors import (
    InvalidRequest,
    InvalidSamples,
    ModelNameTaken,
    ModelNotFound,
    SizeOutOfBounds,
    UnknownModelType,
)
from sgt.services import models, samples
from sgt.services.context import ServiceContext, open_context
from sgt.services.inference import run_model
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import samples as sample_store
from sgt.storage.tables import CheckpointRow, LeaseLogRow, ModelRow, SampleBatchRow, TrainingRow


@pytest.fixture
def alice(ctx: ServiceContext) -> CurrentUser:
    return make_user(ctx, secret_id="alice")


@pytest.fixture
def bob(ctx: ServiceContext) -> CurrentUser:
    return make_user(ctx, secret_id="bob")


def model_id(ctx: ServiceContext, name: str, app_name: str = "app") -> int:
    with ctx.db.read() as session:
        return session.execute(
            select(ModelRow.id).where(ModelRow.name == name, ModelRow.app_name == app_name)
        ).scalar_one()


def rows_of(ctx: ServiceContext, table: type, model: int) -> int:
    with ctx.db.read() as session:
        return session.execute(
            select(func.count()).select_from(table).where(table.model_id == model)
        ).scalar_one()


def store_checkpoint(ctx: ServiceContext, model: int, weights: bytes, model_type: str) -> None:
    with ctx.db.write() as session:
        checkpoint_store.write_checkpoint(
            session,
            model_id=model,
            model_type=model_type,
            weights=weights,
            trained_sample_count=1,
            now=ctx.db.now(session),
        )


def test_a_created_model_is_listed(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="m", app_name="maya", in_size=4, out_size=2, client_data=[1])
    [record] = models.list_my_models(ctx, alice)
    assert asdict(record) == {
        "user_unique_id": "alice",
        "name": "m",
        "client_data": [1],
        "app_name": "maya",
        "model_type": "std",
        "in_size": 4,
        "out_size": 2,
        "is_public": False,
    }
    status = samples.read_training_status(ctx, alice, app_name="maya", name="m")
    assert (status.state, status.sample_count, status.steps) == (TrainingState.UNTRAINED, 0, 0)


def test_create_refuses_taken_names_unknown_types_and_bad_sizes(
    ctx: ServiceContext, alice: CurrentUser, bob: CurrentUser
) -> None:
    make_model(ctx, alice, name="m")
    with pytest.raises(ModelNameTaken):
        make_model(ctx, alice, name="m")
    make_model(ctx, bob, name="m")
    make_model(ctx, alice, name="m", app_name="other")
    with pytest.raises(UnknownModelType):
        make_model(ctx, alice, model_type="nope")
    for sizes in ({"in_size": 0}, {"out_size": -1}, {"in_size": 16385}, {"in_size": 10**9}):
        with pytest.raises(SizeOutOfBounds):
            make_model(ctx, alice, **sizes)
    assert len(models.list_my_models(ctx, alice)) == 2


def test_the_parameter_bound_refuses_big_networks(settings: Settings) -> None:
    small = open_context(settings.model_copy(update={"max_parameters": 10_000}))
    try:
        user = make_user(small)
        with pytest.raises(SizeOutOfBounds, match="parameters"):
            make_model(small, user, in_size=64, out_size=64)
    finally:
        small.close()


def test_client_data_has_a_size_limit(settings: Settings) -> None:
    small = open_context(settings.model_copy(update={"max_client_data_bytes": 20}))
    try:
        user = make_user(small)
        with pytest.raises(InvalidRequest, match="client_data"):
            make_model(small, user, client_data="x" * 30)
        name = make_model(small, user, client_data="x" * 10)
        with pytest.raises(InvalidRequest, match="client_data"):
            models.update_client_data(small, user, app_name="app", name=name, client_data=[0] * 20)
    finally:
        small.close()


def test_upload_stores_float32_bytes_and_queues_training(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    make_model(ctx, alice, name="m")
    inputs, targets = make_samples(6)
    added = samples.upload_samples(
        ctx, alice, app_name="app", name="m", train_data=(inputs, targets)
    )
    assert added == 6
    pairs = [[[0.5, 0.25, 0.125], [1.0, -1.0]]]
    assert samples.upload_samples(ctx, alice, app_name="app", name="m", train_data=pairs) == 1
    model = model_id(ctx, "m")
    with ctx.db.read() as session:
        batch = (
            session.execute(select(SampleBatchRow).order_by(SampleBatchRow.id)).scalars().first()
        )
        assert (
            batch is not None and len(batch.inputs) == 6 * 3 * 4 and len(batch.targets) == 6 * 2 * 4
        )
        stored_x, stored_y = sample_store.load_samples(
            session, model_id=model, in_size=3, out_size=2
        )
    assert np.array_equal(stored_x, np.vstack([inputs, [[0.5, 0.25, 0.125]]]))
    assert np.array_equal(stored_y, np.vstack([targets, [[1.0, -1.0]]]))
    status = samples.read_training_status(ctx, alice, app_name="app", name="m")
    assert (status.state, status.sample_count) == (TrainingState.QUEUED, 7)


def test_an_empty_upload_changes_nothing(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="m")
    assert samples.upload_samples(ctx, alice, app_name="app", name="m", train_data=[]) == 0
    status = samples.read_training_status(ctx, alice, app_name="app", name="m")
    assert (status.state, status.sample_count) == (TrainingState.UNTRAINED, 0)
    assert rows_of(ctx, SampleBatchRow, model_id(ctx, "m")) == 0


def test_a_refused_upload_stores_nothing(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="m")
    with pytest.raises(InvalidSamples):
        samples.upload_samples(
            ctx, alice, app_name="app", name="m", train_data=[[[1, 2, 3], [1, float("nan")]]]
        )
    assert rows_of(ctx, SampleBatchRow, model_id(ctx, "m")) == 0


def test_clear_removes_samples_and_keeps_weights(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="untrained")
    make_model(ctx, alice, name="trained")
    for name in ("untrained", "trained"):
        samples.upload_samples(ctx, alice, app_name="app", name=name, train_data=make_samples(5))
    store_checkpoint(ctx, model_id(ctx, "trained"), b"weights", "std")
    for name, state in (
        ("untrained", TrainingState.UNTRAINED),
        ("trained", TrainingState.CONVERGED),
    ):
        samples.clear_samples(ctx, alice, app_name="app", name=name)
        status = samples.read_training_status(ctx, alice, app_name="app", name=name)
        assert (status.state, status.sample_count) == (state, 0)
        assert rows_of(ctx, SampleBatchRow, model_id(ctx, name)) == 0
    assert rows_of(ctx, CheckpointRow, model_id(ctx, "trained")) == 1


def test_delete_removes_every_row_of_the_model(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="gone")
    make_model(ctx, alice, name="stays")
    for name in ("gone", "stays"):
        samples.upload_samples(ctx, alice, app_name="app", name=name, train_data=make_samples(5))
        store_checkpoint(ctx, model_id(ctx, name), b"weights", "std")
    gone, stays = model_id(ctx, "gone"), model_id(ctx, "stays")
    from sgt.storage import training as queue

    with ctx.db.write() as session:
        queue.claim_model_to_train(session, worker="w", now=ctx.db.now(session), lease_seconds=30)
    assert rows_of(ctx, LeaseLogRow, gone) == 1
    models.delete_model(ctx, alice, app_name="app", name="gone")
    for table in (SampleBatchRow, CheckpointRow, TrainingRow, LeaseLogRow):
        assert rows_of(ctx, table, gone) == 0, table.__name__
    for table in (SampleBatchRow, CheckpointRow, TrainingRow):
        assert rows_of(ctx, table, stays) == 1, table.__name__
    with pytest.raises(ModelNotFound):
        models.delete_model(ctx, alice, app_name="app", name="gone")
    with pytest.raises(ModelNotFound):
        samples.read_training_status(ctx, alice, app_name="app", name="gone")


def test_only_the_owner_reaches_a_model(
    ctx: ServiceContext, alice: CurrentUser, bob: CurrentUser
) -> None:
    make_model(ctx, alice, name="m", is_public=True)
    with pytest.raises(ModelNotFound):
        models.delete_model(ctx, bob, app_name="app", name="m")
    with pytest.raises(ModelNotFound):
        models.update_client_data(ctx, bob, app_name="app", name="m", client_data=1)
    with pytest.raises(ModelNotFound):
        run_model(ctx, bob, app_name="app", name="m", data=[[1, 2, 3]])
    with pytest.raises(ModelNotFound):
        samples.upload_samples(ctx, bob, app_name="app", name="m", train_data=make_samples(2))
    assert models.list_my_models(ctx, bob) == []
    assert [r.key.name for r in models.list_public_models(ctx)] == ["m"]


def clone(ctx: ServiceContext, user: CurrentUser, author: str, name: str, new_name: str) -> None:
    models.clone_model(
        ctx, user, author_unique_id=author, name=name, app_name="app", new_name=new_name
    )


def test_clone_copies_spec_client_data_and_weights_not_samples(
    ctx: ServiceContext, alice: CurrentUser, bob: CurrentUser
) -> None:
    make_model(ctx, alice, name="src", in_size=3, out_size=2, client_data={"k": 1}, is_public=True)
    samples.upload_samples(ctx, alice, app_name="app", name="src", train_data=make_samples(8))
    store_checkpoint(ctx, model_id(ctx, "src"), b"the-weights", "std")
    clone(ctx, bob, "alice", "src", "copy")
    [record] = models.list_my_models(ctx, bob)
    assert (record.key.owner, record.key.name, record.is_public) == ("bob", "copy", False)
    assert (record.spec, record.client_data) == (ModelSpec("std", 3, 2), {"k": 1})
    with ctx.db.read() as session:
        copy = session.execute(select(ModelRow).where(ModelRow.name == "copy")).scalar_one()
        checkpoint = checkpoint_store.load_checkpoint(session, copy.id)
        assert checkpoint is not None and checkpoint.weights == b"the-weights"
    assert rows_of(ctx, SampleBatchRow, copy.id) == 0
    status = samples.read_training_status(ctx, bob, app_name="app", name="copy")
    assert (status.state, status.sample_count) == (TrainingState.CONVERGED, 0)


def test_clone_of_an_untrained_model_is_untrained(ctx: ServiceContext, alice: CurrentUser) -> None:
    make_model(ctx, alice, name="src")
    clone(ctx, alice, "alice", "src", "copy")
    status = samples.read_training_status(ctx, alice, app_name="app", name="copy")
    assert status.state == TrainingState.UNTRAINED
    probe = np.array([[0.1, 0.2, 0.3]], np.float32)
    source = run_model(ctx, alice, app_name="app", name="src", data=probe)
    copy = run_model(ctx, alice, app_name="app", name="copy", data=probe)
    assert np.array_equal(source, copy)


def test_clone_refusals(ctx: ServiceContext, alice: CurrentUser, bob: CurrentUser) -> None:
    make_model(ctx, alice, name="private")
    make_model(ctx, alice, name="public", is_public=True)
    make_model(ctx, bob, name="taken")
    with pytest.raises(ModelNameTaken):
        clone(ctx, bob, "alice", "public", "taken")
    with pytest.raises(ModelNotFound) as private:
        clone(ctx, bob, "alice", "private", "x")
    models.delete_model(ctx, alice, app_name="app", name="private")
    with pytest.raises(ModelNotFound) as missing:
        clone(ctx, bob, "alice", "private", "x")
    assert private.value.message == missing.value.message
    with pytest.raises(ModelNotFound):
        clone(ctx, bob, "nobody", "public", "x")
    assert [r.key.name for r in models.list_my_models(ctx, bob)] == ["taken"]


def test_run_answers_from_the_latest_checkpoint(ctx: ServiceContext, alice: CurrentUser) -> None:
    from sgt.ml.base import ModelShape
    from sgt.ml.registry import get_model_type

    make_model(ctx, alice, name="m")
    probe = np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.0]], np.float32)
    untrained = run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert untrained.shape == (2, 2)
    assert run_model(ctx, alice, app_name="app", name="m", data=[]).shape == (0, 2)
    other = get_model_type("std").initial(ModelShape(3, 2), seed=12345)
    store_checkpoint(ctx, model_id(ctx, "m"), other.to_bytes(), "std")
    answered = run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert np.array_equal(answered, other.predict(probe))
    assert not np.array_equal(answered, untrained)


def test_an_unchanged_model_is_loaded_once_and_a_new_checkpoint_at_once(
    ctx: ServiceContext, alice: CurrentUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sgt.ml.base import ModelShape
    from sgt.ml.registry import get_model_type
    from sgt.services import inference

    loads: list[int] = []
    real_load = inference._load_predictor

    def counting_load(*args: object, **kwargs: object) -> object:
        loads.append(1)
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inference, "_load_predictor", counting_load)
    make_model(ctx, alice, name="m")
    probe = np.array([[0.1, 0.2, 0.3]], np.float32)
    for _ in range(3):
        run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert len(loads) == 1, "an unchanged model is served from memory"
    newer = get_model_type("std").initial(ModelShape(3, 2), seed=99)
    store_checkpoint(ctx, model_id(ctx, "m"), newer.to_bytes(), "std")
    answered = run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert len(loads) == 2, "a newer checkpoint is loaded on the next request"
    assert np.array_equal(answered, newer.predict(probe))
    run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert len(loads) == 2


def test_a_recreated_model_never_answers_with_the_deleted_ones_weights(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    from sgt.ml.base import ModelShape
    from sgt.ml.registry import get_model_type

    make_model(ctx, alice, name="m")
    trained = get_model_type("std").initial(ModelShape(3, 2), seed=7)
    store_checkpoint(ctx, model_id(ctx, "m"), trained.to_bytes(), "std")
    probe = np.array([[0.1, 0.2, 0.3]], np.float32)
    old = run_model(ctx, alice, app_name="app", name="m", data=probe)
    models.delete_model(ctx, alice, app_name="app", name="m")
    make_model(ctx, alice, name="m")
    fresh = run_model(ctx, alice, app_name="app", name="m", data=probe)
    assert not np.array_equal(fresh, old)


def create_weights(
    ctx: ServiceContext, user: CurrentUser, name: str, spec: ModelSpec, *, is_public: bool = False
) -> None:
    models.create_model(
        ctx, user, app_name="app", name=name, spec=spec, client_data=None, is_public=is_public
    )


def test_a_weights_model_keeps_max_influences_and_shows_the_contract_record(
    ctx: ServiceContext, alice: CurrentUser, bob: CurrentUser
) -> None:
    create_weights(ctx, alice, "skin", ModelSpec("weights", 5, 6, max_influences=2), is_public=True)
    [record] = models.list_my_models(ctx, alice)
    assert (record.model_type, record.in_size, record.out_size) == ("weights", 5, 6)
    # Untrained, a weights model already answers skin weights, at most 2 non-zero a row.
    answered = run_model(ctx, alice, app_name="app", name="skin", data=np.ones((4, 5), np.float32))
    assert np.all(answered >= 0.0) and np.all((answered > 0.0).sum(axis=1) <= 2)
    np.testing.assert_allclose(answered.sum(axis=1), 1.0, atol=1e-6)
    clone(ctx, bob, "alice", "skin", "copy")
    with ctx.db.read() as session:
        stored = session.execute(select(ModelRow.name, ModelRow.model_type)).all()
    assert sorted(stored) == [("copy", "weights:2"), ("skin", "weights:2")]


def test_create_refuses_max_influences_out_of_range_or_for_other_types(
    ctx: ServiceContext, alice: CurrentUser
) -> None:
    for limit in (0, -1, 7):
        with pytest.raises(SizeOutOfBounds, match="max_influences"):
            create_weights(ctx, alice, "m", ModelSpec("weights", 5, 6, max_influences=limit))
    with pytest.raises(UnknownModelType, match="max_influences"):
        create_weights(ctx, alice, "m", ModelSpec("std", 5, 6, max_influences=2))
    # The stored form is not a type name a client may send.
    with pytest.raises(UnknownModelType):
        create_weights(ctx, alice, "m", ModelSpec("weights:2", 5, 6))
    create_weights(ctx, alice, "m", ModelSpec("weights", 5, 6, max_influences=6))
    create_weights(ctx, alice, "plain", ModelSpec("weights", 5, 6))
    assert [r.model_type for r in models.list_my_models(ctx, alice)] == ["weights", "weights"]
