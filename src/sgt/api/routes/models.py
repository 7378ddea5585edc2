"""Models: create, delete, update client_data, read mine, read public, clone, list types."""

from __future__ import annotations

from sgt.api.errors import CLONE_EXCEPTION, CREATE_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import (
    CloneModelRequest,
    CreateModelRequest,
    DeleteModelRequest,
    ListModelTypeRequest,
    ReadMyModelsRequest,
    ReadPublicModelsRequest,
    UpdateClientDataRequest,
)
from sgt.domain.models import ModelRecord, ModelSpec
from sgt.ml.registry import model_type_names
from sgt.services import models
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["models"])


def create(ctx: ServiceContext, user: CurrentUser, request: CreateModelRequest) -> None:
    spec = ModelSpec(request.model_type, request.in_size, request.out_size, request.max_influences)
    models.create_model(
        ctx,
        user,
        app_name=request.app_name,
        name=request.name,
        spec=spec,
        client_data=request.client_data,
        is_public=request.is_public,
    )


def delete(ctx: ServiceContext, user: CurrentUser, request: DeleteModelRequest) -> None:
    models.delete_model(ctx, user, app_name=request.app_name, name=request.name)


def update_client_data(
    ctx: ServiceContext, user: CurrentUser, request: UpdateClientDataRequest
) -> None:
    models.update_client_data(
        ctx, user, app_name=request.app_name, name=request.name, client_data=request.client_data
    )


def read_mine(
    ctx: ServiceContext, user: CurrentUser, _request: ReadMyModelsRequest
) -> list[ModelRecord]:
    return models.list_my_models(ctx, user)


def read_public(
    ctx: ServiceContext, _user: CurrentUser, _request: ReadPublicModelsRequest
) -> list[ModelRecord]:
    return models.list_public_models(ctx)


def clone(ctx: ServiceContext, user: CurrentUser, request: CloneModelRequest) -> None:
    models.clone_model(
        ctx,
        user,
        author_unique_id=request.author_unique_id,
        name=request.name,
        app_name=request.app_name,
        new_name=request.new_name,
    )


def list_types(_ctx: ServiceContext, _request: ListModelTypeRequest) -> list[str]:
    return model_type_names()


router.add_authenticated(
    Operation("/public/create_sgt_model", CreateModelRequest, CREATE_EXCEPTION, "Create a model"),
    create,
)
router.add_authenticated(
    Operation(
        "/public/delete_sgt_model",
        DeleteModelRequest,
        None,
        "Delete a model, its checkpoints and its training data",
    ),
    delete,
)
router.add_authenticated(
    Operation(
        "/public/update_sgt_model_client_data",
        UpdateClientDataRequest,
        None,
        "Replace a model's client_data",
    ),
    update_client_data,
)
router.add_authenticated(
    Operation(
        "/public/read_my_sgt_model",
        ReadMyModelsRequest,
        None,
        "The caller's models, all apps",
        response_type=list[ModelRecord],
    ),
    read_mine,
)
router.add_authenticated(
    Operation(
        "/public/read_public_sgt_model",
        ReadPublicModelsRequest,
        None,
        "Every user's public models",
        response_type=list[ModelRecord],
    ),
    read_public,
)
router.add_authenticated(
    Operation(
        "/public/clone_sgt_model_to_mine",
        CloneModelRequest,
        CLONE_EXCEPTION,
        "Copy a public or own model with its weights",
        owns_not_found=True,
    ),
    clone,
)
router.add_public(
    Operation(
        "/public/list_model_type",
        ListModelTypeRequest,
        None,
        "Names of the model types",
        response_type=list[str],
    ),
    list_types,
)
