"""Offline export: /public/export_sgt_model (extension, docs/onnx.md)."""

from __future__ import annotations

import base64

from sgt.api.errors import RUN_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import ExportModelBody, ExportModelRequest
from sgt.services.context import ServiceContext
from sgt.services.export import export_model
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["export"])


def export(ctx: ServiceContext, user: CurrentUser, request: ExportModelRequest) -> ExportModelBody:
    exported = export_model(ctx, user, app_name=request.app_name, name=request.name)
    return ExportModelBody(
        format="onnx",
        opset=exported.opset,
        input=exported.input_name,
        output=exported.output_name,
        in_size=exported.in_size,
        out_size=exported.out_size,
        base64=base64.b64encode(exported.content).decode("ascii"),
    )


# Export is run taken offline: the same caller (the owner), the same weights, so the same
# exception name; a model without trained weights is refused under it.
router.add_authenticated(
    Operation(
        "/public/export_sgt_model",
        ExportModelRequest,
        RUN_EXCEPTION,
        "The served model as one ONNX file (extension)",
        response_type=ExportModelBody,
        notes="The answer's `base64` is the .onnx file: opset 17 (with ai.onnx.ml 3 for trees), "
        "float32 `input` of shape [n, in_size], float32 `output` of shape [n, out_size]. "
        "A model without trained weights is refused (`RunWeightsNetException`).",
    ),
    export,
)
