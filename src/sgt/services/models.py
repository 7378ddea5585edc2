"""Model use cases: create, delete, update client_data, list, clone."""

from __future__ import annotations

import secrets
from typing import Any

import orjson

from sgt.domain.client_data import check_client_data
from sgt.domain.models import ModelRecord, ModelSpec
from sgt.errors import InvalidRequest, ModelNotFound, SizeOutOfBounds, UnknownModelType
from sgt.ml.base import ModelShape
from sgt.ml.registry import WEIGHTS, get_model_type, model_type_names
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import models as model_store
from sgt.storage import training as training_store
from sgt.storage import versions as version_store
from sgt.storage.engine import Session
from sgt.storage.tables import ModelRow, UserRow
from sgt.storage.users import find_user


def create_model(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    spec: ModelSpec,
    client_data: Any,
    is_public: bool,
) -> None:
    """A new, untrained model; raises UnknownModelType, SizeOutOfBounds, ModelNameTaken."""
    check_spec(ctx, spec)
    client_json = encode_client_data(ctx, client_data)
    with ctx.db.write() as session:
        owner = session.get_one(UserRow, user.id)
        now = ctx.db.now(session)
        row = model_store.insert_model(
            session,
            owner=owner,
            app_name=app_name,
            name=name,
            spec=spec,
            client_data_json=client_json,
            is_public=is_public,
            seed=_new_seed(),
            now=now,
        )
        training_store.add_training_row(session, model_id=row.id, now=now)


def check_spec(ctx: ServiceContext, spec: ModelSpec) -> None:
    """Refuse unknown types, sizes outside the configured bounds and a max_influences that is
    not for `weights` or not between 1 and out_size, before allocating anything."""
    names = model_type_names()
    if spec.model_type not in names:
        # Checked by name: a stored form such as "weights:4" is not a type a client may send.
        known = ", ".join(sorted(names))
        raise UnknownModelType(
            f"model_type '{spec.model_type}' is unknown; expected one of: {known}"
        )
    limits = ctx.limits
    for field, value, upper in (
        ("in_size", spec.in_size, limits.max_in_size),
        ("out_size", spec.out_size, limits.max_out_size),
    ):
        if not 1 <= value <= upper:
            raise SizeOutOfBounds(f"{field} must be between 1 and {upper}, got {value}")
    _check_max_influences(spec)
    model_type = get_model_type(spec.stored_type)
    parameters = model_type.parameter_count(ModelShape(spec.in_size, spec.out_size))
    if parameters > limits.max_parameters:
        raise SizeOutOfBounds(
            f"in_size={spec.in_size} and out_size={spec.out_size} imply {parameters:,} parameters "
            f"for model_type '{spec.model_type}'; the limit is {limits.max_parameters:,}"
        )


def _check_max_influences(spec: ModelSpec) -> None:
    if spec.max_influences is None:
        return
    if spec.model_type != WEIGHTS.name:
        raise UnknownModelType(
            f"max_influences is for model_type '{WEIGHTS.name}' only, not '{spec.model_type}'"
        )
    if not 1 <= spec.max_influences <= spec.out_size:
        raise SizeOutOfBounds(
            f"max_influences must be between 1 and out_size ({spec.out_size}), "
            f"got {spec.max_influences}"
        )


def encode_client_data(ctx: ServiceContext, client_data: Any) -> str:
    """client_data as compact JSON text, within its size limit; raises InvalidRequest for one
    that could not be stored and answered as it came (docs/input_rules.md)."""
    check_client_data(client_data)
    encoded = orjson.dumps(client_data)
    if len(encoded) > ctx.limits.max_client_data_bytes:
        raise InvalidRequest(
            f"client_data is {len(encoded):,} bytes as JSON; the limit is "
            f"{ctx.limits.max_client_data_bytes:,}"
        )
    return encoded.decode()


def delete_model(ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str) -> None:
    """Delete the model with its samples, checkpoint and versions; its trainer stops at its
    next heartbeat."""
    with ctx.db.write() as session:
        row = own_model(session, user, app_name=app_name, name=name)
        model_store.delete_model(session, row.id)
    ctx.model_cache.forget(row.id)
    ctx.db.reclaim_space()


def update_client_data(
    ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str, client_data: Any
) -> None:
    client_json = encode_client_data(ctx, client_data)
    with ctx.db.write() as session:
        own_model(session, user, app_name=app_name, name=name).client_data = client_json


def list_my_models(ctx: ServiceContext, user: CurrentUser) -> list[ModelRecord]:
    with ctx.db.read() as session:
        rows = model_store.list_models_of(session, user.id)
    return [model_store.to_record(m, owner, orjson.loads(m.client_data)) for m, owner in rows]


def list_public_models(ctx: ServiceContext) -> list[ModelRecord]:
    with ctx.db.read() as session:
        rows = model_store.list_public_models(session)
    return [model_store.to_record(m, owner, orjson.loads(m.client_data)) for m, owner in rows]


def clone_model(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    author_unique_id: str,
    name: str,
    app_name: str,
    new_name: str,
) -> None:
    """Copy a public (or the caller's own) model with its current weights, not its samples
    nor its older versions: the weights become the clone's version 1.

    Raises ModelNotFound for a missing model and for another user's private one alike, and
    ModelNameTaken when the caller already has `new_name`.
    """
    missing = ModelNotFound(f"no public model '{name}' of '{author_unique_id}' in app '{app_name}'")
    with ctx.db.write() as session:
        author = find_user(session, author_unique_id)
        if author is None:
            raise missing
        source = model_store.find_model(session, owner_id=author.id, app_name=app_name, name=name)
        if source is None or not (source.is_public or author.id == user.id):
            raise missing
        checkpoint = checkpoint_store.load_checkpoint(session, source.id)
        now = ctx.db.now(session)
        clone = model_store.insert_model(
            session,
            owner=session.get_one(UserRow, user.id),
            app_name=app_name,
            name=new_name,
            spec=model_store.spec_of(source),
            client_data_json=source.client_data,
            is_public=False,
            seed=source.seed,
            now=now,
        )
        if checkpoint is not None:
            clone_version = checkpoint_store.write_checkpoint(
                session,
                model_id=clone.id,
                model_type=checkpoint.model_type,
                weights=checkpoint.weights,
                trained_sample_count=checkpoint.trained_sample_count,
                now=now,
            )
            # Only the served weights travel: they are the clone's version 1.
            version_store.copy_served_version(
                session,
                source_id=source.id,
                clone_id=clone.id,
                clone_checkpoint_version=clone_version,
                now=now,
            )
        training_store.add_training_row(
            session, model_id=clone.id, now=now, has_weights=checkpoint is not None
        )


def own_model(session: Session, user: CurrentUser, *, app_name: str, name: str) -> ModelRow:
    """The caller's model in this transaction; raises ModelNotFound."""
    row = model_store.find_model(session, owner_id=user.id, app_name=app_name, name=name)
    if row is None:
        raise ModelNotFound(f"you have no model '{name}' in app '{app_name}'")
    return row


def _new_seed() -> int:
    return secrets.randbits(62)
