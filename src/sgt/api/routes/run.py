"""Inference: /public/run_sgt_model, with or without standard deviations."""

from __future__ import annotations

from typing import cast

import numpy as np

from sgt.api.binary import array_object, arrays_with_std, matrix_of
from sgt.api.errors import RUN_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import (
    Float32Array,
    Matrix,
    RunModelRequest,
    RunWithStdArrays,
    RunWithStdBody,
)
from sgt.services.context import ServiceContext
from sgt.services.inference import run_model, run_model_with_std
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["run"])


def run(
    ctx: ServiceContext, user: CurrentUser, request: RunModelRequest
) -> np.ndarray | Float32Array | RunWithStdBody | RunWithStdArrays:
    data = matrix_of(request.data, field="data")
    request.data = []  # the decoded lists are garbage now; free them before the model runs
    if request.return_std:
        return _run_with_std(ctx, user, request, data)
    outputs = run_model(ctx, user, app_name=request.app_name, name=request.name, data=data)
    return array_object(outputs) if request.response_format == "binary" else outputs


def _run_with_std(
    ctx: ServiceContext, user: CurrentUser, request: RunModelRequest, data: np.ndarray
) -> RunWithStdBody | RunWithStdArrays:
    found = run_model_with_std(ctx, user, app_name=request.app_name, name=request.name, data=data)
    if request.response_format == "binary":
        return arrays_with_std(found.mean, found.std, found.out_of_range)
    # orjson writes the arrays as the documented lists.
    return RunWithStdBody(
        mean=cast(Matrix, found.mean),
        std=cast(Matrix, found.std),
        out_of_range=cast(list[bool], found.out_of_range),
    )


router.add_authenticated(
    Operation(
        "/public/run_sgt_model",
        RunModelRequest,
        RUN_EXCEPTION,
        "Predict n x out_size outputs for n x in_size inputs",
        response_type=Matrix | Float32Array | RunWithStdBody | RunWithStdArrays,
        notes="Binary extension (docs/binary.md): `data` may also be a `Float32Array` object "
        '(`{"dtype": "float32", "shape": [n, in_size], "base64": ...}`, little-endian, '
        'row-major), and `"response_format": "binary"` answers a `Float32Array` of shape '
        "[n, out_size] instead of the nested list. Plain JSON is unchanged.\n\n"
        'Uncertainty extension (docs/uncertainty.md): `"return_std": true` answers '
        '`{"mean": n x out_size, "std": n x out_size, "out_of_range": [n booleans]}` (`mean` '
        "and `std` as `Float32Array` objects when binary): calibrated standard deviations, "
        "mean ± 1.645·std being a 90 % interval, and rows with an input outside the training "
        "range widened by 10 % each side.",
        inline_max_bytes=16 * 1024,
    ),
    run,
)
