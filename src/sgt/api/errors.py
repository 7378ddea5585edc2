"""Domain errors to the contract's wire: status 400 and {"exception", "message"}, built here only.

The contract names depend on the operation more than on the condition: a taken name is
`CreateWeightsNetException` on create and `CloneWeightsNetToMineException` on clone. So each
route names its operation's exception, and the conditions below map to it; the rest map to
one name everywhere.
"""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from sgt.errors import (
    AuthFailed,
    ExportNotSupported,
    InvalidRequest,
    InvalidSamples,
    ModelNameTaken,
    ModelNotFound,
    SgtError,
    SizeOutOfBounds,
    UnknownModelType,
)

log = logging.getLogger("sgt.api")

AUTH_EXCEPTION = "AuthException"
FIND_MODEL_EXCEPTION = "FindModelException"
REQUEST_EXCEPTION = "RequestException"
INTERNAL_EXCEPTION = "InternalException"
CREATE_EXCEPTION = "CreateWeightsNetException"
CLONE_EXCEPTION = "CloneWeightsNetToMineException"
RUN_EXCEPTION = "RunWeightsNetException"
UPLOAD_EXCEPTION = "UploadDataException"

# Conditions that take the name of the operation they happen in.
OPERATION_CONDITIONS: tuple[type[SgtError], ...] = (
    ModelNameTaken,
    UnknownModelType,
    SizeOutOfBounds,
    InvalidSamples,
    ExportNotSupported,
)
FIXED_NAMES: dict[type[SgtError], str] = {
    AuthFailed: AUTH_EXCEPTION,
    ModelNotFound: FIND_MODEL_EXCEPTION,
    InvalidRequest: REQUEST_EXCEPTION,
}


def wire_name(error: SgtError, *, operation: str | None, owns_not_found: bool = False) -> str:
    """The contract's exception name for `error` raised by `operation`."""
    if operation is not None and (
        isinstance(error, OPERATION_CONDITIONS)
        or (owns_not_found and isinstance(error, ModelNotFound))
    ):
        return operation
    for condition, name in FIXED_NAMES.items():
        if isinstance(error, condition):
            return name
    return INTERNAL_EXCEPTION


def error_response(exception: str, message: str) -> Response:
    """The one place the error body is built."""
    return Response(
        orjson.dumps({"exception": exception, "message": message}),
        status_code=400,
        media_type="application/json",
    )


def internal_error_response(error: BaseException, request_id: str) -> Response:
    """A generic answer for the client; the traceback goes to the log under the request id."""
    log.error("request %s failed", request_id, exc_info=error)
    return error_response(INTERNAL_EXCEPTION, "internal exception")
