"""Tree ensembles from flat node arrays to one `ai.onnx.ml` TreeEnsembleRegressor node: the
forest's exporter and the one a gradient-boosted family needs (sum of trees plus a base value).

Node arrays follow SGT's forest convention: all trees share flat arrays; node i splits on input
`feature[i]`, going to `left[i]` when x <= `threshold[i]` and to `right[i]` otherwise; a leaf is
its own child on both sides and answers `values[i]` (one value per output). A converter from
LightGBM or XGBoost writes its trees into such arrays (a "<" split at t is "<=" at the next
float32 below t) and calls `add_tree_ensemble` with `aggregate="SUM"` and its base score. Imports
numpy and `graph` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sgt.ml.export.graph import ML_DOMAIN, GraphBuilder


@dataclass(frozen=True)
class TreeArrays:
    """Flat node arrays of several trees (see the module docstring); `roots` holds each tree's
    root node."""

    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    values: np.ndarray  # (nodes, outputs); read at leaves only


def add_tree_ensemble(
    graph: GraphBuilder,
    inputs: str,
    trees: TreeArrays,
    *,
    aggregate: Literal["AVERAGE", "SUM"],
    base_values: Sequence[float] | None = None,
) -> str:
    """The trees' mean (or sum, plus `base_values`) per output, float32 (n, outputs)."""
    outputs = int(trees.values.shape[1])
    attributes = _node_attributes(trees)
    if base_values is not None:
        attributes["base_values"] = [float(value) for value in base_values]
    return graph.node(
        "TreeEnsembleRegressor",
        [inputs],
        domain=ML_DOMAIN,
        n_targets=outputs,
        aggregate_function=aggregate,
        post_transform="NONE",
        **attributes,
    )


def _node_attributes(trees: TreeArrays) -> dict[str, list[int] | list[float] | list[str]]:
    """The TreeEnsembleRegressor attributes: nodes numbered within their tree, breadth first."""
    tree_ids: list[int] = []
    node_ids: list[int] = []
    modes: list[str] = []
    features: list[int] = []
    thresholds: list[float] = []
    true_ids: list[int] = []
    false_ids: list[int] = []
    target_trees: list[int] = []
    target_nodes: list[int] = []
    target_ids: list[int] = []
    target_weights: list[float] = []
    outputs = trees.values.shape[1]
    for tree, root in enumerate(trees.roots.tolist()):
        order = _reachable(int(root), trees.left, trees.right)
        local = {node: index for index, node in enumerate(order)}
        for node in order:
            left, right = int(trees.left[node]), int(trees.right[node])
            is_leaf = left == node and right == node
            tree_ids.append(tree)
            node_ids.append(local[node])
            modes.append("LEAF" if is_leaf else "BRANCH_LEQ")
            features.append(0 if is_leaf else int(trees.feature[node]))
            thresholds.append(0.0 if is_leaf else float(trees.threshold[node]))
            true_ids.append(0 if is_leaf else local[left])
            false_ids.append(0 if is_leaf else local[right])
            if is_leaf:
                # Only non-zero weights: a boosted tree answers one output of many, and a
                # missing weight adds nothing to a sum (nor to an average over the trees).
                for output in range(outputs):
                    value = float(trees.values[node, output])
                    if value != 0.0:
                        target_trees.append(tree)
                        target_nodes.append(local[node])
                        target_ids.append(output)
                        target_weights.append(value)
    return {
        "nodes_treeids": tree_ids,
        "nodes_nodeids": node_ids,
        "nodes_modes": modes,
        "nodes_featureids": features,
        "nodes_values": thresholds,
        "nodes_truenodeids": true_ids,
        "nodes_falsenodeids": false_ids,
        "target_treeids": target_trees,
        "target_nodeids": target_nodes,
        "target_ids": target_ids,
        "target_weights": target_weights,
    }


def _reachable(root: int, left: np.ndarray, right: np.ndarray) -> list[int]:
    """Nodes of the tree at `root`, breadth first."""
    order, frontier = [root], [root]
    while frontier:
        children = []
        for node in frontier:
            if int(left[node]) != node or int(right[node]) != node:
                children += [int(left[node]), int(right[node])]
        order += children
        frontier = children
    return order
