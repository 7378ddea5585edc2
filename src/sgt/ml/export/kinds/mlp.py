"""Exporter of the MLP ensemble (`mlp` and `std`'s candidate): the serving copy of the nets,
whose first and last layers already hold both standardisers and the 1/K of the member mean, so
the graph is the same matmuls that `predict` runs. Imports the family and the export helpers only.
"""

from __future__ import annotations

import numpy as np
import torch

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.families.mlp import MlpPredictor


def export_mlp(graph: GraphBuilder, predictor: MlpPredictor, inputs: str) -> str:
    # The folded serving net is what `predict` evaluates; the exporter reads it on purpose.
    net = predictor._serving_net
    hidden = inputs
    last = len(net.weights) - 1
    for index, (weight, bias) in enumerate(zip(net.weights, net.biases, strict=True)):
        # (n, in) @ (K, in, out) broadcasts to (K, n, out), then + (K, 1, out): every member.
        product = graph.node("MatMul", [hidden, graph.constant("weight", _array(weight))])
        hidden = graph.node("Add", [product, graph.constant("bias", _array(bias))])
        if index != last:
            hidden = graph.node("Mul", [hidden, graph.node("Sigmoid", [hidden])])  # SiLU
    axes = graph.constant("axes", np.array([0], dtype=np.int64))
    return graph.node("ReduceSum", [hidden, axes], keepdims=0)


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)
