"""Exporter of the `linear` family: one matrix product and a bias, as served. Imports the family
and the export helpers only."""

from __future__ import annotations

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.heads import add_affine
from sgt.ml.families.linear import LinearPredictor


def export_linear(graph: GraphBuilder, predictor: LinearPredictor, inputs: str) -> str:
    return add_affine(graph, inputs, predictor.weight.cpu().numpy(), predictor.bias.cpu().numpy())
