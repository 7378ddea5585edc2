"""Liveness, readiness and Prometheus metrics (extension, outside the /sgt contract).

`/readyz` and `/metrics` are plain (threaded) routes: they read the database.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse

from sgt.api.metrics import (
    RequestMetrics,
    database_families,
    encode_text,
    process_families,
    trainer_families,
)
from sgt.config import Settings
from sgt.errors import StorageError
from sgt.services.context import ServiceContext
from sgt.services.stats import ServiceGauges, read_gauges
from sgt.services.trainers import TrainerCensus, trainer_census

router = APIRouter(tags=["health"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

# When this API process started: a trainer gets `trainer_stale_seconds` from then to beat first.
_PROCESS_STARTED = time.monotonic()


@router.get("/healthz", summary="The process answers")
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", summary="The database answers and, with the embedded trainer, one beats")
def readyz(request: Request) -> JSONResponse:
    ctx: ServiceContext = request.app.state.ctx
    settings: Settings = request.app.state.settings
    if not ctx.db.ping():
        return JSONResponse({"status": "unavailable", "reason": "database"}, status_code=503)
    if settings.embedded_trainer and not _trainer_is_beating(ctx, settings):
        return JSONResponse({"status": "unavailable", "reason": "trainer"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _trainer_is_beating(ctx: ServiceContext, settings: Settings) -> bool:
    census = _census_or_none(ctx, settings)
    if census is None:
        return False
    return (
        bool(census.alive) or time.monotonic() - _PROCESS_STARTED <= settings.trainer_stale_seconds
    )


def _census_or_none(ctx: ServiceContext, settings: Settings) -> TrainerCensus | None:
    try:
        return trainer_census(ctx, stale_seconds=settings.trainer_stale_seconds)
    except StorageError:
        return None


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
        *trainer_families(_census_or_none(ctx, request.app.state.settings)),
    ]
    return PlainTextResponse(encode_text(families), media_type=PROMETHEUS_TEXT)
