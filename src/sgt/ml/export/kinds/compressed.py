"""Exporter of `std`'s compressed path (many outputs): the coefficient model's graph, then
coefficients @ shapes + mean, as served. The inner model goes through the graph's own dispatch.
Imports the compressed type and the export helpers only."""

from __future__ import annotations

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.heads import add_affine
from sgt.ml.types.std_compressed import CompressedPredictor


def export_compressed(graph: GraphBuilder, predictor: CompressedPredictor, inputs: str) -> str:
    coefficients = graph.add_predictor(predictor.inner, inputs)
    return add_affine(graph, coefficients, predictor.shapes, predictor.mean)
