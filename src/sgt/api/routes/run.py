"""Inference: /public/run_sgt_model."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter

from sgt.api.errors import RUN_EXCEPTION
from sgt.api.operations import Operation, add_operation
from sgt.api.schemas import RunModelRequest
from sgt.services.context import ServiceContext
from sgt.services.inference import run_model
from sgt.services.users import CurrentUser

router = APIRouter(tags=["run"])


def run(ctx: ServiceContext, user: CurrentUser | None, request: RunModelRequest) -> np.ndarray:
    assert user is not None
    return run_model(ctx, user, app_name=request.app_name, name=request.name, data=request.data)


add_operation(
    router,
    Operation(
        "/public/run_sgt_model",
        RunModelRequest,
        RUN_EXCEPTION,
        "Predict n x out_size outputs for n x in_size inputs",
    ),
    run,
)
