"""Exporter of the `weights` type: the inner model's graph, then each row projected onto the
simplex (k-sparse with `max_influences`), as served. Imports the type and the export helpers
only."""

from __future__ import annotations

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.heads import add_simplex_projection
from sgt.ml.types.weights import WeightsPredictor


def export_weights(graph: GraphBuilder, predictor: WeightsPredictor, inputs: str) -> str:
    raw = graph.add_predictor(predictor.inner, inputs)
    return add_simplex_projection(
        graph, raw, width=predictor.shape.out_size, max_nonzero=predictor.max_influences
    )
