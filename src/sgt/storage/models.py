"""Models: create, find, list, update client_data, delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sgt.domain.models import ModelRecord, ModelSpec, split_stored_type
from sgt.errors import ModelNameTaken
from sgt.storage.tables import CheckpointRow, ModelRow, UserRow


def insert_model(
    session: Session,
    *,
    owner: UserRow,
    app_name: str,
    name: str,
    spec: ModelSpec,
    client_data_json: str,
    is_public: bool,
    seed: int,
    now: datetime,
) -> ModelRow:
    """A new model row; raises ModelNameTaken when (owner, app_name, name) exists."""
    row = ModelRow(
        owner_id=owner.id,
        app_name=app_name,
        name=name,
        model_type=spec.stored_type,
        in_size=spec.in_size,
        out_size=spec.out_size,
        is_public=is_public,
        client_data=client_data_json,
        seed=seed,
        created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        raise ModelNameTaken(f"a model named '{name}' already exists in app '{app_name}'") from None
    return row


def find_model(session: Session, *, owner_id: int, app_name: str, name: str) -> ModelRow | None:
    """The owner's model with that app_name and name, or None."""
    return session.execute(
        select(ModelRow).where(
            ModelRow.owner_id == owner_id, ModelRow.app_name == app_name, ModelRow.name == name
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class ModelToRun:
    """What a run, or an export of the weights it runs, reads of a model: its id, stored type,
    sizes, seed and checkpoint version (None before the first checkpoint)."""

    id: int
    model_type: str
    in_size: int
    out_size: int
    seed: int
    version: int | None


# Built once: every run request reads it (see `find_key` in sgt.storage.users).
_MODEL_TO_RUN = (
    select(
        ModelRow.id,
        ModelRow.model_type,
        ModelRow.in_size,
        ModelRow.out_size,
        ModelRow.seed,
        CheckpointRow.version,
    )
    .outerjoin(CheckpointRow, CheckpointRow.model_id == ModelRow.id)
    .where(
        ModelRow.owner_id == bindparam("owner_id"),
        ModelRow.app_name == bindparam("app_name"),
        ModelRow.name == bindparam("name"),
    )
)


def find_model_to_run(
    reader: Connection, *, owner_id: int, app_name: str, name: str
) -> ModelToRun | None:
    """The owner's model with that app_name and name, as a run needs it, or None."""
    row = reader.execute(
        _MODEL_TO_RUN, {"owner_id": owner_id, "app_name": app_name, "name": name}
    ).one_or_none()
    return None if row is None else ModelToRun(*row)


def list_models_of(session: Session, owner_id: int) -> list[tuple[ModelRow, str]]:
    """The owner's models with the owner's secret_id, ordered by app then name."""
    return _list(session, ModelRow.owner_id == owner_id)


def list_public_models(session: Session) -> list[tuple[ModelRow, str]]:
    """Every user's public models with their owner's secret_id."""
    return _list(session, ModelRow.is_public.is_(True))


def _list(session: Session, condition: object) -> list[tuple[ModelRow, str]]:
    rows = session.execute(
        select(ModelRow, UserRow.secret_id)
        .join(UserRow, UserRow.id == ModelRow.owner_id)
        .where(condition)  # type: ignore[arg-type]
        .order_by(UserRow.secret_id, ModelRow.app_name, ModelRow.name)
    ).all()
    return [(model, secret_id) for model, secret_id in rows]


def delete_model(session: Session, model_id: int) -> None:
    """Delete the model; its samples, checkpoint, training row and lease log go with it."""
    session.execute(delete(ModelRow).where(ModelRow.id == model_id))


def spec_of(model: ModelRow) -> ModelSpec:
    """The spec the row stores, max_influences included."""
    return ModelSpec.from_stored(model.model_type, model.in_size, model.out_size)


def to_record(model: ModelRow, owner_secret_id: str, client_data: object) -> ModelRecord:
    # The record names the type alone: max_influences is not a field of API.md's record.
    return ModelRecord(
        user_unique_id=owner_secret_id,
        name=model.name,
        client_data=client_data,
        app_name=model.app_name,
        model_type=split_stored_type(model.model_type)[0],
        in_size=model.in_size,
        out_size=model.out_size,
        is_public=model.is_public,
    )
