"""How one contract operation is served: read the body, decode it, authenticate, call the
service, encode the answer; every failure turned into the contract's 400 body.

Decoding, the service call and encoding run in a worker thread, so a 50 MB request never blocks
the event loop (numpy and torch release the GIL for the heavy parts).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
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
from sgt.errors import AuthFailed, SgtError
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
    # (reads: SQLite WAL readers never block) and whose small requests take well under 1 ms,
    # and only for credentials verified lately (see _TrustedCredentials).
    inline_max_bytes: int = 0


class _TrustedCredentials:
    """Digests of credentials that passed `authenticate` in this process lately.

    Only their small requests run on the event loop: authentication there stays one SHA-256
    (the key verifier remembers them), never a 50 ms scrypt that would stall every client. A
    stranger or a new user goes through the thread pool as before; an old key presented after
    its rotation costs one scrypt on the loop, then is forgotten.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._digests: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(request: object) -> bytes | None:
        secret_id = getattr(request, "secret_id", None)
        secret_key = getattr(request, "secret_key", None)
        if not isinstance(secret_id, str) or not isinstance(secret_key, str):
            return None
        return hashlib.sha256(f"{secret_id}\0{secret_key}".encode()).digest()

    def __contains__(self, digest: bytes | None) -> bool:
        with self._lock:
            return digest in self._digests

    def add(self, digest: bytes | None) -> None:
        if digest is None:
            return
        with self._lock:
            self._digests[digest] = None
            self._digests.move_to_end(digest)
            while len(self._digests) > self.capacity:
                self._digests.popitem(last=False)

    def discard(self, digest: bytes | None) -> None:
        with self._lock:
            self._digests.pop(digest or b"", None)


def add_operation(router: APIRouter, operation: Operation, handler: Handler) -> None:
    """Serve `operation` at POST `operation.path` with `handler(ctx, user, request)`."""

    trusted = _TrustedCredentials()

    async def endpoint(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.ctx
        settings: Settings = request.app.state.settings
        try:
            # Handed over in a list that _serve empties, so that a 50 MB body is freed as soon
            # as it is decoded instead of living as long as this coroutine.
            body = [await read_body(request, max_bytes=settings.max_body_bytes)]
            content = None
            if len(body[0]) <= operation.inline_max_bytes:
                content = _serve_inline(ctx, operation, handler, body, settings, trusted)
            if content is None:
                content = await run_in_threadpool(
                    _serve, ctx, operation, handler, body, settings.max_name_chars, trusted
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
    trusted: _TrustedCredentials,
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
    return _respond(ctx, operation, handler, request, trusted)


def _serve_inline(
    ctx: ServiceContext,
    operation: Operation,
    handler: Handler,
    body: list[bytearray],
    settings: Settings,
    trusted: _TrustedCredentials,
) -> bytes | None:
    """The answer computed on the event loop, or None: the thread pool must serve it."""
    try:
        request = decode_body(
            body[0], operation.request_type, max_text_chars=settings.max_name_chars
        )
    except SgtError:
        return None  # judging the credentials of a bad body may cost a scrypt
    if operation.authenticated and _TrustedCredentials.digest(request) not in trusted:
        return None
    body.clear()
    return _respond(ctx, operation, handler, request, trusted)


def _respond(
    ctx: ServiceContext,
    operation: Operation,
    handler: Handler,
    request: msgspec.Struct,
    trusted: _TrustedCredentials,
) -> bytes:
    user = None
    if operation.authenticated:
        digest = _TrustedCredentials.digest(request)
        try:
            user = authenticate(ctx, request.secret_id, request.secret_key)  # type: ignore[attr-defined]
        except AuthFailed:
            trusted.discard(digest)
            raise
        if operation.inline_max_bytes:
            trusted.add(digest)
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
