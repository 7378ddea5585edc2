"""Liveness, readiness and Prometheus metrics (extension).

`/metrics` is a plain (threaded) route: part of it is read from the database at each scrape.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse

from sgt.api.metrics import (
    RequestMetrics,
    database_families,
    encode_text,
    process_families,
)
from sgt.errors import StorageError
from sgt.services.context import ServiceContext
from sgt.services.stats import ServiceGauges, read_gauges

router = APIRouter(tags=["health"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz", summary="The process answers")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="The database answers")
def readyz(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    if not ctx.db.ping():
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics", summary="Prometheus text format")
def metrics(request: Request) -> PlainTextResponse:
    ctx: ServiceContext = request.app.state.ctx
    request_metrics: RequestMetrics = request.app.state.request_metrics
    gauges: ServiceGauges | None
    try:
        gauges = read_gauges(ctx)
    except StorageError:
        gauges = None  # still worth scraping: the process's own counters, and database_up 0
    families = [
        *request_metrics.families(),
        *process_families(
            auth_failures=ctx.auth_throttle.failures_total,
            auth_throttled=ctx.auth_throttle.throttled_total,
            cache_entries=len(ctx.model_cache),
        ),
        *database_families(gauges),
    ]
    return PlainTextResponse(encode_text(families), media_type=PROMETHEUS_TEXT)
