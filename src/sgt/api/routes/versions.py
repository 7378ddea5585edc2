"""Model versions (extension): list the kept converged versions, roll back to one."""

from __future__ import annotations

from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import ListVersionsRequest, ModelVersionBody, RollbackModelRequest
from sgt.services import versions
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["versions"])


def list_versions(
    ctx: ServiceContext, user: CurrentUser, request: ListVersionsRequest
) -> list[ModelVersionBody]:
    kept = versions.list_versions(ctx, user, app_name=request.app_name, name=request.name)
    return [ModelVersionBody.of(info) for info in kept]


def rollback(ctx: ServiceContext, user: CurrentUser, request: RollbackModelRequest) -> None:
    versions.roll_back_model(
        ctx, user, app_name=request.app_name, name=request.name, version=request.version
    )


router.add_authenticated(
    Operation(
        "/public/list_sgt_model_versions",
        ListVersionsRequest,
        None,
        "A model's kept converged versions, newest first (extension)",
        response_type=list[ModelVersionBody],
    ),
    list_versions,
)
router.add_authenticated(
    Operation(
        "/public/rollback_sgt_model",
        RollbackModelRequest,
        None,
        "Serve an earlier version at once; the next upload trains from it (extension)",
        notes="An unknown model or version is a FindModelException. Training in progress stops; "
        "data uploaded since that version waits for the next upload.",
    ),
    rollback,
)
