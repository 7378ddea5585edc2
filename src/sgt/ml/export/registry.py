"""The table of ONNX exporters, by predictor kind, and `export_predictor`: one predictor (any
kind `std` may serve, a blend included) to one self-contained .onnx file.

A new family adds one module in `sgt.ml.export.kinds` (a function writing its nodes, usually
through `heads` or `tree_ensemble`) and one line in `EXPORTERS`. Imports the exporters, `graph`
and `sgt.ml.base`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgt.ml.base import Predictor
from sgt.ml.export.graph import INPUT_NAME, OPSET, OUTPUT_NAME, Exporter, GraphBuilder
from sgt.ml.export.kinds import blend, compressed, forest, gbt, gp, linear, mlp, weights
from sgt.ml.families import forest as forest_family
from sgt.ml.families import gbt as gbt_family
from sgt.ml.families import gp as gp_family
from sgt.ml.families import linear as linear_family
from sgt.ml.families import mlp as mlp_family
from sgt.ml.types import blend as blend_type
from sgt.ml.types import std_compressed
from sgt.ml.types import weights as weights_type

EXPORTERS: dict[str, Exporter] = {
    gp_family.KIND: gp.export_gp,
    linear_family.KIND: linear.export_linear,
    mlp_family.KIND: mlp.export_mlp,
    forest_family.KIND: forest.export_forest,
    gbt_family.KIND: gbt.export_gbt,
    blend_type.KIND: blend.export_blend,
    std_compressed.KIND: compressed.export_compressed,
    weights_type.KIND: weights.export_weights,
}


@dataclass(frozen=True)
class OnnxModel:
    """An exported model: the .onnx file and what a tool needs to call it."""

    content: bytes
    opset: int
    input_name: str
    output_name: str
    in_size: int
    out_size: int


def export_predictor(predictor: Predictor) -> OnnxModel:
    """The ONNX graph computing `predictor.predict` (float32 [n, in_size] to [n, out_size]).

    Raises ExportNotSupported when the predictor, or a member of its blend, has no exporter."""
    graph = GraphBuilder(EXPORTERS)
    shape = predictor.shape
    outputs = graph.add_predictor(predictor, INPUT_NAME)
    content = graph.to_model(
        inputs=INPUT_NAME, outputs=outputs, in_size=shape.in_size, out_size=shape.out_size
    )
    return OnnxModel(
        content=content,
        opset=OPSET,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        in_size=shape.in_size,
        out_size=shape.out_size,
    )
