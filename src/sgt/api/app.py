"""The application factory: `create_app(settings)`; nothing happens at import time."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sgt import __version__
from sgt.api.errors import REQUEST_EXCEPTION, error_response, internal_error_response
from sgt.api.openapi import install_components
from sgt.api.routes import auth, dashboard, docs, export, health, models, run, train_data
from sgt.config import Settings, load_settings
from sgt.ml.runtime import configure_torch
from sgt.services.context import ServiceContext, open_context

log = logging.getLogger("sgt.api")
PREFIX = "/sgt"
# The contract's operations, served under PREFIX and described in the OpenAPI components.
OPERATION_GROUPS = (auth, models, run, train_data, export)


def create_app(settings: Settings, ctx: ServiceContext | None = None) -> FastAPI:
    """The SGT API over the storage named by `settings` (or an already opened context)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = ctx or open_context(settings)
        app.state.ctx = opened
        # One torch thread per request thread; large predictions split their rows instead.
        configure_torch(threads=1)
        log.info("SGT API ready on %s", settings.effective_database_url.split("@")[-1])
        yield
        if ctx is None:
            opened.close()

    app = FastAPI(
        title="SGT",
        version=__version__,
        summary="Example data in, trained models out.",
        description="Every endpoint is POST + JSON under /sgt. Success is 200 with the documented "
        'body; every failure is 400 with {"exception", "message"}.',
        lifespan=lifespan,
        # /docs is served by routes/docs.py from packaged files; ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.request_counts = Counter()
    for group in OPERATION_GROUPS:
        app.include_router(group.router, prefix=PREFIX)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(dashboard.router)
    docs.mount_static_files(app)
    _install_error_handlers(app)
    install_components(app, [op for group in OPERATION_GROUPS for op in group.router.operations])
    app.add_middleware(RequestIdMiddleware, counts=app.state.request_counts)
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and API worker processes: settings from SGT_* variables."""
    return create_app(load_settings())


class RequestIdMiddleware:
    """Gives every request an id, sent back as X-Request-ID and used in the logs."""

    def __init__(self, app: ASGIApp, counts: Counter[tuple[str, int]]) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                # X-SGT-Extensions advertises docs/binary.md, so clients detect it for free.
                extra = [(b"x-request-id", request_id.encode()), (b"x-sgt-extensions", b"binary")]
                message["headers"] = [*message["headers"], *extra]
                self.counts[(scope["path"], message["status"])] += 1
            await send(message)

        await self.app(scope, receive, send_with_id)


def _install_error_handlers(app: FastAPI) -> None:
    # The framework's own 404, 405 and 422 never reach a client: the contract allows 400 only.
    async def on_http_exception(_request: Request, error: Exception) -> Response:
        detail = getattr(error, "detail", "bad request")
        return error_response(REQUEST_EXCEPTION, f"{detail}: every endpoint is POST under /sgt")

    async def on_validation_error(_request: Request, _error: Exception) -> Response:
        return error_response(REQUEST_EXCEPTION, "request body is malformed")

    async def on_unexpected(request: Request, error: Exception) -> Response:
        return internal_error_response(error, request.scope.get("request_id", "-"))

    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
