"""How one contract operation is served: read the body, decode it, authenticate, call the
service, encode the answer; every failure turned into the contract's 400 body.

Decoding, the service call and encoding run in a worker thread, so a 50 MB request never blocks
the event loop (numpy and torch release the GIL for the heavy parts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sgt.api.body import decode_body, read_body
from sgt.api.errors import error_response, internal_error_response, wire_name
from sgt.api.schemas import Credentials, ErrorBody
from sgt.config import Settings
from sgt.errors import SgtError
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser, authenticate

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

Handler = Callable[[ServiceContext, CurrentUser | None, Any], Any]


@dataclass(frozen=True)
class Operation:
    """One endpoint of the contract and the exception name its failures carry."""

    path: str
    request_type: type[msgspec.Struct]
    exception: str | None
    summary: str
    authenticated: bool = True
    # Clone reports a missing source model under its own name, not FindModelException.
    owns_not_found: bool = False
    # Extra paragraph for the OpenAPI page (the binary extension on run and upload).
    notes: str = ""
    # Bodies up to this size are served on the event loop, skipping two thread switches that
    # cost more than the work on a busy machine. Only for operations that never wait on a lock
    # (reads: SQLite WAL readers never block) and whose small requests take well under 1 ms.
    inline_max_bytes: int = 0


def add_operation(router: APIRouter, operation: Operation, handler: Handler) -> None:
    """Serve `operation` at POST `operation.path` with `handler(ctx, user, request)`."""

    async def endpoint(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.ctx
        settings: Settings = request.app.state.settings
        try:
            # Handed over in a list that _serve empties, so that a 50 MB body is freed as soon
            # as it is decoded instead of living as long as this coroutine.
            body = [await read_body(request, max_bytes=settings.max_body_bytes)]
            if len(body[0]) <= operation.inline_max_bytes:
                content = _serve(ctx, operation, handler, body, settings.max_name_chars)
            else:
                content = await run_in_threadpool(
                    _serve, ctx, operation, handler, body, settings.max_name_chars
                )
        except SgtError as error:
            name = wire_name(
                error, operation=operation.exception, owns_not_found=operation.owns_not_found
            )
            return error_response(name, error.message)
        except Exception as error:  # noqa: BLE001 - the contract's InternalException
            return internal_error_response(error, request.scope.get("request_id", "-"))
        return Response(content, media_type="application/json")

    endpoint.__name__ = operation.path.rsplit("/", 1)[-1]
    router.add_api_route(
        operation.path,
        endpoint,
        methods=["POST"],
        summary=operation.summary,
        description=_describe(operation),
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "$ref": f"#/components/schemas/{operation.request_type.__name__}"
                        }
                    }
                },
            }
        },
        responses={
            200: {"description": "Success: the documented result."},
            400: {
                "description": "Failure",
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{ErrorBody.__name__}"}
                    }
                },
            },
        },
    )


def _serve(
    ctx: ServiceContext,
    operation: Operation,
    handler: Handler,
    body: list[bytearray],
    max_chars: int,
) -> bytes:
    raw = body.pop()
    try:
        request = decode_body(raw, operation.request_type, max_text_chars=max_chars)
    except SgtError:
        # A stranger learns nothing about the body's problems: credentials are judged first.
        if operation.authenticated:
            _authenticate_loosely(ctx, raw)
        raise
    del raw
    user = None
    if operation.authenticated:
        user = authenticate(ctx, request.secret_id, request.secret_key)  # type: ignore[attr-defined]
    result = handler(ctx, user, request)
    if isinstance(result, msgspec.Struct):
        return msgspec.json.encode(result)
    return orjson.dumps(result, option=JSON_OPTIONS)


def _authenticate_loosely(ctx: ServiceContext, body: bytearray) -> None:
    try:
        credentials = msgspec.json.decode(body, type=Credentials)
    except msgspec.MsgspecError:
        return
    authenticate(ctx, credentials.secret_id, credentials.secret_key)


def _describe(operation: Operation) -> str:
    parts = []
    if operation.authenticated:
        parts.append("Authenticates with `secret_id` and `secret_key` in the body.")
    if operation.exception:
        parts.append(f"Failures of this operation are reported as `{operation.exception}`.")
    text = " ".join(parts)
    return f"{text}\n\n{operation.notes}" if operation.notes else text
