"""Identities: /private/update_auth_token and /public/check_auth_token."""

from __future__ import annotations

from sgt.api.errors import AUTH_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import CheckAuthTokenRequest, UpdateAuthTokenRequest
from sgt.errors import AuthFailed, InvalidRequest
from sgt.services import users
from sgt.services.context import ServiceContext

router = OperationRouter(tags=["auth"])


def update_auth_token(ctx: ServiceContext, request: UpdateAuthTokenRequest) -> None:
    if not isinstance(request.key, str):
        raise AuthFailed("key is not the system key")
    if not request.secret_id or not request.secret_key:
        raise InvalidRequest("secret_id and secret_key must be non-empty strings")
    end_time = None
    if request.end_time:
        try:
            end_time = users.parse_end_time(request.end_time)
        except ValueError:
            raise InvalidRequest(
                f"end_time must be 'YYYY-MM-DD HH:MM:SS' (UTC), got {request.end_time!r}"
            ) from None
    users.save_user_key(
        ctx,
        system_key=request.key,
        secret_id=request.secret_id,
        secret_key=request.secret_key,
        doc=request.doc or "",
        end_time=end_time,
    )


def check_auth_token(ctx: ServiceContext, request: CheckAuthTokenRequest) -> bool:
    return users.is_authentic(ctx, request.secret_id, request.secret_key)


router.add_public(
    Operation(
        "/private/update_auth_token",
        UpdateAuthTokenRequest,
        AUTH_EXCEPTION,
        "Create a user or replace its key (needs the system key)",
    ),
    update_auth_token,
)
router.add_public(
    Operation(
        "/public/check_auth_token",
        CheckAuthTokenRequest,
        None,
        "Whether secret_id and secret_key are valid now (true or false)",
        response_type=bool,
    ),
    check_auth_token,
)
