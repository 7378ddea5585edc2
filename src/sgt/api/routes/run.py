"""Inference: /public/run_sgt_model."""

from __future__ import annotations

import numpy as np

from sgt.api.binary import array_object, matrix_of
from sgt.api.errors import RUN_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import Float32Array, Matrix, RunModelRequest
from sgt.services.context import ServiceContext
from sgt.services.inference import run_model
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["run"])


def run(
    ctx: ServiceContext, user: CurrentUser, request: RunModelRequest
) -> np.ndarray | Float32Array:
    data = matrix_of(request.data, field="data")
    request.data = []  # the decoded lists are garbage now; free them before the model runs
    outputs = run_model(ctx, user, app_name=request.app_name, name=request.name, data=data)
    return array_object(outputs) if request.response_format == "binary" else outputs


router.add_authenticated(
    Operation(
        "/public/run_sgt_model",
        RunModelRequest,
        RUN_EXCEPTION,
        "Predict n x out_size outputs for n x in_size inputs",
        response_type=Matrix | Float32Array,
        notes="Binary extension (docs/binary.md): `data` may also be a `Float32Array` object "
        '(`{"dtype": "float32", "shape": [n, in_size], "base64": ...}`, little-endian, '
        'row-major), and `"response_format": "binary"` answers a `Float32Array` of shape '
        "[n, out_size] instead of the nested list. Plain JSON is unchanged.",
        inline_max_bytes=16 * 1024,
    ),
    run,
)
