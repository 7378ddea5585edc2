"""Exporter of the forest family: its trees as one TreeEnsembleRegressor averaging them. Imports
the family and the export helpers only."""

from __future__ import annotations

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.tree_ensemble import TreeArrays, add_tree_ensemble
from sgt.ml.families.forest import ForestPredictor


def export_forest(graph: GraphBuilder, predictor: ForestPredictor, inputs: str) -> str:
    trees = TreeArrays(
        roots=predictor.roots.cpu().numpy(),
        feature=predictor.feature.cpu().numpy(),
        threshold=predictor.threshold.cpu().numpy(),
        left=predictor.left.cpu().numpy(),
        right=predictor.right.cpu().numpy(),
        values=predictor.values.float().cpu().numpy(),
    )
    return add_tree_ensemble(graph, inputs, trees, aggregate="AVERAGE")
