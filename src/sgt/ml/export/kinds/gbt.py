"""Exporter of the gradient-boosted tree family: the booster's trees (its JSON dump) as one
TreeEnsembleRegressor summing them plus XGBoost's base score, then the target scale and mean.
Imports xgboost (to read the dump), the family and the export helpers only."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.export.heads import add_affine, add_scaling
from sgt.ml.export.tree_ensemble import TreeArrays, add_tree_ensemble
from sgt.ml.families.gbt import GbtPredictor


def export_gbt(graph: GraphBuilder, predictor: GbtPredictor, inputs: str) -> str:
    shape = predictor.shape
    if predictor.raw is None:  # no booster yet: the targets' mean for every row
        weight = np.zeros((shape.in_size, shape.out_size), dtype=np.float32)
        return add_affine(graph, inputs, weight, predictor.mean)
    dump = json.loads(xgboost.Booster(model_file=bytearray(predictor.raw)).save_raw("json"))
    learner = dump["learner"]
    model = learner["gradient_booster"]["model"]
    used = int(model["iteration_indptr"][predictor.rounds])
    trees = _tree_arrays(model["trees"][:used], model["tree_info"][:used], shape.out_size)
    base = _base_score(learner["learner_model_param"]["base_score"], shape.out_size)
    summed = add_tree_ensemble(graph, inputs, trees, aggregate="SUM", base_values=base)
    return add_scaling(graph, summed, scale=predictor.scale, shift=predictor.mean)


def _tree_arrays(trees: list[dict[str, Any]], targets: list[int], outputs: int) -> TreeArrays:
    """XGBoost's per-tree arrays as one set of flat arrays: a leaf (-1 children) is its own
    child, its value sits in `split_conditions`, and "x < c" becomes "x <= the float32 below c"."""
    roots, feature, threshold, left, right, values = [], [], [], [], [], []
    offset = 0
    for tree, target in zip(trees, targets, strict=True):
        lefts = np.asarray(tree["left_children"], dtype=np.int64)
        rights = np.asarray(tree["right_children"], dtype=np.int64)
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
        own = np.arange(len(lefts), dtype=np.int64)
        is_leaf = lefts < 0
        roots.append(offset)
        feature.append(np.asarray(tree["split_indices"], dtype=np.int64))
        below = np.nextafter(conditions, np.float32(-np.inf)).astype(np.float32)
        threshold.append(np.where(is_leaf, 0.0, below).astype(np.float32))
        left.append(np.where(is_leaf, own, lefts) + offset)
        right.append(np.where(is_leaf, own, rights) + offset)
        leaf_values = np.zeros((len(lefts), outputs), dtype=np.float32)
        leaf_values[is_leaf, target] = conditions[is_leaf]
        values.append(leaf_values)
        offset += len(lefts)
    return TreeArrays(
        roots=np.asarray(roots, dtype=np.int64),
        feature=np.concatenate(feature),
        threshold=np.concatenate(threshold),
        left=np.concatenate(left),
        right=np.concatenate(right),
        values=np.concatenate(values),
    )


def _base_score(text: str, outputs: int) -> list[float]:
    """XGBoost writes one base score ("5E-1") or one per target ("[5E-1,1E0]")."""
    scores = [float(part) for part in text.strip("[]").split(",")]
    return scores * outputs if len(scores) == 1 else scores
