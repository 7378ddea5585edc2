"""What the dashboard shows: the models a user may see (their own and every public one), each
with its training status. Visibility is the clone rule: own or public; another user's private
model is reported missing, never revealed."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from sgt.domain.models import ModelRecord
from sgt.domain.text import is_valid_identifier, safe_for_message
from sgt.domain.training import TrainingStatus
from sgt.errors import ModelNotFound
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import models as model_store
from sgt.storage import training as training_store
from sgt.storage.engine import Session
from sgt.storage.tables import ModelRow
from sgt.storage.users import find_user


@dataclass(frozen=True)
class ModelOverview:
    record: ModelRecord
    status: TrainingStatus
    is_own: bool


def list_visible_models(ctx: ServiceContext, user: CurrentUser) -> list[ModelOverview]:
    """The caller's models, then other users' public ones, each with its status."""
    with ctx.db.read() as session:
        own = model_store.list_models_of(session, user.id)
        others = [
            (model, owner)
            for model, owner in model_store.list_public_models(session)
            if model.owner_id != user.id
        ]
        return [_overview(session, model, owner, user) for model, owner in [*own, *others]]


def read_visible_model(
    ctx: ServiceContext, user: CurrentUser, *, owner: str, app_name: str, name: str
) -> ModelOverview:
    """One model the caller may see; raises ModelNotFound otherwise (missing or private)."""
    shown = [safe_for_message(text) for text in (name, owner, app_name)]
    missing = ModelNotFound(
        f"no model '{shown[0]}' of '{shown[1]}' in app '{shown[2]}' you may see"
    )
    if not all(is_valid_identifier(text) for text in (owner, app_name, name)):
        raise missing  # no model can have such a name (docs/input_rules.md)
    with ctx.db.read() as session:
        author = find_user(session, owner)
        if author is None:
            raise missing
        model = model_store.find_model(session, owner_id=author.id, app_name=app_name, name=name)
        if model is None or not (model.is_public or model.owner_id == user.id):
            raise missing
        return _overview(session, model, owner, user)


def _overview(session: Session, model: ModelRow, owner: str, user: CurrentUser) -> ModelOverview:
    return ModelOverview(
        record=model_store.to_record(model, owner, orjson.loads(model.client_data)),
        status=training_store.read_status(session, model.id),
        is_own=model.owner_id == user.id,
    )
