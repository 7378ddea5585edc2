"""The application factory: `create_app(settings)`; nothing happens at import time."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sgt import __version__
from sgt.api.errors import REQUEST_EXCEPTION, error_response, internal_error_response
from sgt.api.metrics import UNMATCHED_ROUTE, RequestMetrics
from sgt.api.openapi import install_components
from sgt.api.routes import (
    auth,
    dashboard,
    docs,
    export,
    health,
    models,
    run,
    suggest,
    train_data,
    versions,
)
from sgt.config import Settings, load_settings
from sgt.ml.runtime import configure_torch
from sgt.services.context import ServiceContext, open_context
from sgt.services.throttle import CLIENT_ADDRESS

log = logging.getLogger("sgt.api")
PREFIX = "/sgt"
# The contract's operations, served under PREFIX and described in the OpenAPI components.
OPERATION_GROUPS = (auth, models, run, suggest, train_data, versions, export)


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
    app.state.request_metrics = RequestMetrics()
    for group in OPERATION_GROUPS:
        app.include_router(group.router, prefix=PREFIX)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(dashboard.router)
    docs.mount_static_files(app)
    _install_error_handlers(app)
    install_components(app, [op for group in OPERATION_GROUPS for op in group.router.operations])
    app.add_middleware(
        RequestIdMiddleware,
        metrics=app.state.request_metrics,
        templates=RouteTemplates(app),
        trust_forwarded_for=settings.trust_forwarded_for,
    )
    return app


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` and API worker processes: settings from SGT_* variables."""
    return create_app(load_settings())


class RouteTemplates:
    """The path template of the route that served a request (`/sgt/public/run_sgt_model`,
    `/static/{path}`), or one shared name for every path that matched none: the metrics'
    labels come from this fixed set, never from the raw path."""

    def __init__(self, app: FastAPI) -> None:
        # The router leaves the matched route object in the scope, without the prefix it was
        # included under; routes compare by value, so they are keyed by identity.
        self._by_route: dict[int, str] = {}
        for group in OPERATION_GROUPS:
            for route in group.router.routes:
                self._by_route[id(route)] = PREFIX + getattr(route, "path", "")
        for group in (health, docs, dashboard):
            for route in group.router.routes:
                self._by_route[id(route)] = getattr(route, "path", "")
        for route in app.routes:
            if isinstance(route, Route):
                self._by_route[id(route)] = route.path
        self._mounts = [route.path for route in app.routes if isinstance(route, Mount)]
        # Some routes (FastAPI's own /openapi.json) leave no route in the scope.
        self._fixed_paths = {path for path in self._by_route.values() if "{" not in path}

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None and id(route) in self._by_route:
            return self._by_route[id(route)]
        path: str = scope["path"]
        if path in self._fixed_paths:
            return path
        for mount in self._mounts:
            if path.startswith(mount + "/"):
                return mount + "/{path}"
        return UNMATCHED_ROUTE


class RequestIdMiddleware:
    """Gives every request an id, sent back as X-Request-ID and used in the logs; names its
    client address for the authentication throttle (`CLIENT_ADDRESS`, seen by every key check
    the request causes, in the thread pool too); counts it in `metrics` under its route
    template (never its raw path)."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: RequestMetrics,
        templates: RouteTemplates,
        *,
        trust_forwarded_for: bool,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.templates = templates
        self.trust_forwarded_for = trust_forwarded_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope["request_id"] = request_id
        status = [500]  # what a client sees when the app fails before answering

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                # X-SGT-Extensions advertises docs/binary.md, so clients detect it for free.
                extra = [(b"x-request-id", request_id.encode()), (b"x-sgt-extensions", b"binary")]
                message["headers"] = [*message["headers"], *extra]
                status[0] = message["status"]
            await send(message)

        address = CLIENT_ADDRESS.set(client_address(scope, self.trust_forwarded_for))
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CLIENT_ADDRESS.reset(address)
            self.metrics.observe(
                route=self.templates.of(scope),
                status=status[0],
                seconds=time.perf_counter() - started,
            )


UNKNOWN_ADDRESS = "unknown"


def client_address(scope: Scope, trust_forwarded_for: bool) -> str:
    """Who sent the request, for throttling: the connection's peer, or with
    `trust_forwarded_for` the last X-Forwarded-For entry, the one the reverse proxy in front
    appended (earlier entries are whatever the client chose to send)."""
    if trust_forwarded_for:
        values = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        last = b",".join(values).split(b",")[-1].strip().decode("latin-1")
        if last:
            return last
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_ADDRESS


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
