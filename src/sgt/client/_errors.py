"""Exceptions of the client: the contract's 400 bodies, and failures to get a valid reply at all.

Standard library only, and only relative imports: this package must run inside a DCC's Python.

    SgtClientError
    ├── ApiError                         the server answered 400 with {"exception", "message"}
    │   ├── AuthException
    │   ├── CreateWeightsNetException
    │   ├── FindModelException
    │   ├── CloneWeightsNetToMineException
    │   ├── RunWeightsNetException
    │   ├── UploadDataException
    │   ├── RequestException
    │   └── InternalException
    └── TransportError                   no valid reply: the outcome of the request is unknown
        ├── ConnectFailed                could not connect; nothing was sent (safe to retry)
        ├── ConnectionLost               the connection broke after sending began
        ├── RequestTimedOut              no reply within the timeout
        └── UnexpectedResponse           a reply outside the contract: other status, not JSON
"""

from __future__ import annotations

from typing import Any


class SgtClientError(Exception):
    """Root of every exception the client raises on purpose.

    `rows_done` is set when a chunked `run` or `upload_train_data` fails part-way: the rows
    before it were answered (run) or committed (upload), and the failing request started at
    that row, so a row index in the server's message counts from there.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.rows_done: int | None = None


class ApiError(SgtClientError):
    """The server refused the request with the contract's 400 body.

    `exception_name` is the name the server sent (an unknown name is kept here, on this class);
    `request_id` is its `X-Request-ID` header, which finds the server's log lines.
    """

    def __init__(
        self,
        message: str,
        *,
        exception_name: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.exception_name = exception_name or type(self).__name__
        self.request_id = request_id

    def __str__(self) -> str:
        if self.request_id:
            return f"{self.message} (request id {self.request_id})"
        return self.message


class AuthException(ApiError):
    """secret_id/secret_key missing, wrong or expired; or a wrong system key."""


class CreateWeightsNetException(ApiError):
    """The model name is taken, the model type unknown, or a size out of bounds."""


class FindModelException(ApiError):
    """The caller has no model with that app_name and name."""


class CloneWeightsNetToMineException(ApiError):
    """new_name is taken, or the source model is missing or not visible to the caller."""


class RunWeightsNetException(ApiError):
    """`data` is not a 2-D array of finite numbers with in_size columns."""


class UploadDataException(ApiError):
    """`train_data` is not a list of [input, label] pairs of the model's sizes."""


class RequestException(ApiError):
    """The body is not a JSON object, a field is missing or mistyped, or something is too large."""


class InternalException(ApiError):
    """The server failed unexpectedly; its log holds the traceback under the request id."""


class TransportError(SgtClientError):
    """No reply within the contract came back; whether the server acted is unknown."""


class ConnectFailed(TransportError):
    """The connection could not be opened (refused, unknown host): nothing reached the server."""


class ConnectionLost(TransportError):
    """The connection broke after the request began to be sent."""


class RequestTimedOut(TransportError):
    """The server did not answer within the timeout."""


class UnexpectedResponse(TransportError):
    """The reply is not one the contract allows: another status, a body that is not JSON, or
    JSON of the wrong shape. `status_code` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


API_EXCEPTIONS = {
    cls.__name__: cls
    for cls in (
        AuthException,
        CreateWeightsNetException,
        FindModelException,
        CloneWeightsNetToMineException,
        RunWeightsNetException,
        UploadDataException,
        RequestException,
        InternalException,
    )
}


def api_error_from_body(body: Any, request_id: str | None = None) -> ApiError:
    """Turn a 400 body into the exception named by its `exception` field.

    The name is compared by its last dotted part, because the original server sent
    `sgt.flask_bp.AuthException`; an unknown name gives a plain `ApiError` that keeps it.
    Raises `UnexpectedResponse` when the body is not the contract's error object.
    """
    if not isinstance(body, dict) or not isinstance(body.get("exception"), str):
        raise UnexpectedResponse(
            f"status 400 without the contract's error body: {body!r}"[:500],
            status_code=400,
        )
    name = body["exception"]
    message = body.get("message")
    if not isinstance(message, str):
        message = "" if message is None else str(message)
    cls = API_EXCEPTIONS.get(name.rpartition(".")[2], ApiError)
    return cls(message, exception_name=name, request_id=request_id)
