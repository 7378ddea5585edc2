"""Liveness, readiness and a few Prometheus metrics (extension)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse

from sgt.services.context import ServiceContext

router = APIRouter(tags=["health"])


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
async def metrics(request: Request) -> PlainTextResponse:
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
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
