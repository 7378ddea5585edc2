"""Liveness, readiness and a few Prometheus metrics (extension, outside the /sgt contract)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse

from sgt.config import Settings
from sgt.errors import StorageError
from sgt.services.context import ServiceContext
from sgt.services.trainers import TrainerCensus, trainer_census

router = APIRouter(tags=["health"])

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
    bound = settings.trainer_stale_seconds
    try:
        census = trainer_census(ctx, stale_seconds=bound)
    except StorageError:
        return False
    return bool(census.alive) or time.monotonic() - _PROCESS_STARTED <= bound


def _census_or_none(ctx: ServiceContext, settings: Settings) -> TrainerCensus | None:
    try:
        return trainer_census(ctx, stale_seconds=settings.trainer_stale_seconds)
    except StorageError:
        return None


def _label(value: str) -> str:
    """A Prometheus label value, escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", summary="Prometheus text format")
def metrics(request: Request) -> PlainTextResponse:
    ctx: ServiceContext = request.app.state.ctx
    counts: dict[tuple[str, int], int] = request.app.state.request_counts
    lines = [
        "# HELP sgt_requests_total Requests answered, by path and status.",
        "# TYPE sgt_requests_total counter",
    ]
    for (path, status), count in sorted(counts.items()):
        lines.append(f'sgt_requests_total{{path="{path}",status="{status}"}} {count}')
    lines += [
        "# HELP sgt_model_cache_entries Models loaded in this process.",
        "# TYPE sgt_model_cache_entries gauge",
        f"sgt_model_cache_entries {len(ctx.model_cache)}",
    ]
    census = _census_or_none(ctx, request.app.state.settings)
    if census is not None:
        lines += [
            "# HELP sgt_trainers_alive Trainers that beat within SGT_TRAINER_STALE_SECONDS.",
            "# TYPE sgt_trainers_alive gauge",
            f"sgt_trainers_alive {len(census.alive)}",
            "# HELP sgt_trainer_restarts Restarts of each live trainer by its supervisor.",
            "# TYPE sgt_trainer_restarts gauge",
        ]
        lines += [
            f'sgt_trainer_restarts{{trainer="{_label(trainer.name)}"}} {trainer.restarts}'
            for trainer in census.alive
        ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
