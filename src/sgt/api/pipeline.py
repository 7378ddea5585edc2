"""The request pipeline of every contract operation: read the body, decode it, authenticate
when the operation needs a user, call its handler, encode the answer; every failure becomes the
contract's 400 body. Routes register through `OperationRouter.add_public` or `.add_authenticated`,
so a handler that needs a user receives a `CurrentUser`, never None. Must not import sgt.training.

Decoding, the handler and encoding run in a worker thread, so a 50 MB request never blocks the
event loop (numpy and torch release the GIL for the heavy parts). Small requests of operations
that allow it are served on the loop when their credentials need no scrypt; a step that could
block there (a checkpoint load, a wait for a pooled connection) sends the request to the thread
pool instead (`sgt.services.blocking`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from sgt.api.body import decode_body, decode_loosely, read_body
from sgt.api.errors import error_response, internal_error_response, wire_name
from sgt.api.openapi import route_documentation
from sgt.api.operations import Operation
from sgt.api.schemas import Credentials
from sgt.config import Settings
from sgt.errors import SgtError
from sgt.services.blocking import NeedsThread, on_event_loop
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser, authenticate, authenticate_if_remembered

JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY

Body = TypeVar("Body", bound=msgspec.Struct)
CredentialsBody = TypeVar("CredentialsBody", bound=Credentials)

PublicHandler = Callable[[ServiceContext, Body], object]
AuthenticatedHandler = Callable[[ServiceContext, CurrentUser, CredentialsBody], object]


@dataclass(frozen=True)
class _Steps:
    """What an operation does with a decoded body, in the thread pool and on the event loop."""

    authenticated: bool
    respond: Callable[[ServiceContext, Any], bytes]
    # None: the credentials need a full check, so the thread pool must answer.
    respond_on_loop: Callable[[ServiceContext, Any], bytes | None]


class OperationRouter(APIRouter):
    """A router of contract operations that remembers them for the OpenAPI components."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.operations: list[Operation[Any]] = []

    def add_public(self, operation: Operation[Body], handler: PublicHandler[Body]) -> None:
        """Serve `operation` with `handler(ctx, request)`: no credentials checked."""

        def respond(ctx: ServiceContext, request: Body) -> bytes:
            return encode_answer(handler(ctx, request))

        self._add(operation, _Steps(authenticated=False, respond=respond, respond_on_loop=respond))

    def add_authenticated(
        self,
        operation: Operation[CredentialsBody],
        handler: AuthenticatedHandler[CredentialsBody],
    ) -> None:
        """Serve `operation` with `handler(ctx, user, request)` once the body's credentials
        name `user`; AuthFailed otherwise."""

        def respond(ctx: ServiceContext, request: CredentialsBody) -> bytes:
            user = authenticate(ctx, request.secret_id, request.secret_key)
            return encode_answer(handler(ctx, user, request))

        def respond_on_loop(ctx: ServiceContext, request: CredentialsBody) -> bytes | None:
            user = authenticate_if_remembered(ctx, request.secret_id, request.secret_key)
            return None if user is None else encode_answer(handler(ctx, user, request))

        self._add(
            operation, _Steps(authenticated=True, respond=respond, respond_on_loop=respond_on_loop)
        )

    def _add(self, operation: Operation[Any], steps: _Steps) -> None:
        async def endpoint(request: Request) -> Response:
            return await _serve(request, operation, steps)

        endpoint.__name__ = operation.path.rsplit("/", 1)[-1]
        self.add_api_route(
            operation.path,
            endpoint,
            methods=["POST"],
            response_class=Response,
            **route_documentation(operation, authenticated=steps.authenticated),
        )
        self.operations.append(operation)


def encode_answer(result: object) -> bytes:
    """The answer's JSON: msgspec for the binary extension's Structs (bytes become base64),
    orjson for the rest (numpy arrays, dataclasses, plain values)."""
    if isinstance(result, msgspec.Struct):
        return msgspec.json.encode(result)
    return orjson.dumps(result, option=JSON_OPTIONS)


async def _serve(request: Request, operation: Operation[Any], steps: _Steps) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    settings: Settings = request.app.state.settings
    try:
        # Handed over in a list that the serving step empties, so that a 50 MB body is freed as
        # soon as it is decoded instead of living as long as this coroutine.
        body = [await read_body(request, max_bytes=settings.max_body_bytes)]
        content = None
        if len(body[0]) <= operation.inline_max_bytes:
            content = _serve_on_loop(ctx, operation, steps, body, settings.max_name_chars)
        if content is None:
            content = await run_in_threadpool(
                _serve_in_thread, ctx, operation, steps, body, settings.max_name_chars
            )
    except SgtError as error:
        name = wire_name(
            error, operation=operation.exception, owns_not_found=operation.owns_not_found
        )
        return error_response(name, error.message)
    except Exception as error:  # noqa: BLE001 - the contract's InternalException
        return internal_error_response(error, request.scope.get("request_id", "-"))
    return Response(content, media_type="application/json")


def _serve_in_thread(
    ctx: ServiceContext,
    operation: Operation[Any],
    steps: _Steps,
    body: list[bytearray],
    max_chars: int,
) -> bytes:
    raw = body.pop()
    try:
        request = decode_body(raw, operation.request_type, max_text_chars=max_chars)
    except SgtError:
        # A stranger learns nothing about the body's problems: credentials are judged first.
        if steps.authenticated:
            _authenticate_loosely(ctx, raw)
        raise
    del raw
    return steps.respond(ctx, request)


def _serve_on_loop(
    ctx: ServiceContext,
    operation: Operation[Any],
    steps: _Steps,
    body: list[bytearray],
    max_chars: int,
) -> bytes | None:
    """The answer computed on the event loop, or None: the thread pool must serve it."""
    try:
        request = decode_body(body[0], operation.request_type, max_text_chars=max_chars)
    except SgtError:
        return None  # judging the credentials of a bad body may cost a scrypt
    try:
        with on_event_loop():
            content = steps.respond_on_loop(ctx, request)
    except NeedsThread:
        return None
    if content is not None:
        body.clear()
    return content


def _authenticate_loosely(ctx: ServiceContext, body: bytearray) -> None:
    credentials = decode_loosely(body, Credentials)
    if credentials is None:
        return
    authenticate(ctx, credentials.secret_id, credentials.secret_key)
