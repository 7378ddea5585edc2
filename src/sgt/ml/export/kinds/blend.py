"""Exporter of `std`'s blend: each member's graph, then their weighted sum, as served. Members go
through the graph's own dispatch, so any exportable kind may be one. Imports the blend type and
the export helpers only."""

from __future__ import annotations

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.heads import add_weighted_sum
from sgt.ml.types.blend import BlendPredictor


def export_blend(graph: GraphBuilder, predictor: BlendPredictor, inputs: str) -> str:
    parts = [graph.add_predictor(member, inputs) for member in predictor.members]
    return add_weighted_sum(graph, parts, predictor.weights)
