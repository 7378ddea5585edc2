"""Exporter of the GP posterior mean: the Matern-5/2 (or RBF) kernel between the inputs and the
conditioning rows, times the weights, in the very dtype the predictor serves in (float64 where
float32 round-off would show, see `gp_posterior._serving_dtype`), with the same arithmetic
order. Imports the family and the export helpers only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from onnx import TensorProto

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.families.gp_posterior import GpPredictor

Constant = Callable[[str, torch.Tensor], str]
_ONNX_TYPES = {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE}


def export_gp(graph: GraphBuilder, predictor: GpPredictor, inputs: str) -> str:
    # The serving tensors (standardisation and length scales folded into gain and offset) are
    # what `predict` computes with; the exporter reads them on purpose, so both agree exactly.
    rows = predictor._rows_scaled
    dtype = rows.dtype
    numpy_dtype = np.float64 if dtype == torch.float64 else np.float32

    def constant(hint: str, tensor: torch.Tensor) -> str:
        return graph.constant(hint, tensor.detach().cpu().numpy(), dtype=numpy_dtype)

    x = graph.node("Cast", [inputs], to=_ONNX_TYPES[dtype])
    scaled = graph.node(
        "Add",
        [
            graph.node("Mul", [x, constant("gain", predictor._gain)]),
            constant("offset", predictor._offset),
        ],
    )
    distances = _squared_distances(graph, scaled, rows, constant)
    signal = constant("signal", predictor._signal)
    if predictor.hyper.family == "rbf":
        half = graph.constant("minus_half", -0.5, dtype=numpy_dtype)
        kernel = graph.node(
            "Mul", [signal, graph.node("Exp", [graph.node("Mul", [half, distances])])]
        )
    else:
        kernel = _matern52(graph, distances, signal, numpy_dtype)
    mean = graph.node("MatMul", [kernel, constant("weights", predictor._weights)])
    values = graph.node(
        "Add",
        [
            constant("out_mean", predictor._out_mean),
            graph.node("Mul", [mean, constant("out_scale", predictor._out_scale)]),
        ],
    )
    return graph.node("Cast", [values], to=TensorProto.FLOAT)


def _squared_distances(
    graph: GraphBuilder, scaled: str, rows: torch.Tensor, constant: Constant
) -> str:
    """|a|^2 + |b|^2 - 2 a.b, clamped at 0, as `numerics.kernels.squared_distances`."""
    cross = graph.node("MatMul", [scaled, constant("rows_t", rows.T.contiguous())])
    axes = graph.constant("axes", np.array([1], dtype=np.int64))
    left = graph.node("ReduceSum", [graph.node("Mul", [scaled, scaled]), axes], keepdims=1)
    right = constant("rows_sq", rows.square().sum(dim=1))
    two = constant("two", torch.tensor(2.0, dtype=rows.dtype))
    summed = graph.node("Sub", [graph.node("Add", [left, right]), graph.node("Mul", [two, cross])])
    return graph.node("Max", [summed, constant("zero", torch.tensor(0.0, dtype=rows.dtype))])


def _matern52(graph: GraphBuilder, distances: str, signal: str, dtype: type) -> str:
    """signal * (1 + r + r^2 / 3) * exp(-r), r = sqrt(5 max(d, 1e-12))."""
    floored = graph.node("Max", [distances, graph.constant("floor", 1e-12, dtype=dtype)])
    r = graph.node("Sqrt", [graph.node("Mul", [graph.constant("five", 5.0, dtype=dtype), floored])])
    one = graph.constant("one", 1.0, dtype=dtype)
    third = graph.node(
        "Div", [graph.node("Mul", [r, r]), graph.constant("three", 3.0, dtype=dtype)]
    )
    polynomial = graph.node("Add", [graph.node("Add", [one, r]), third])
    decay = graph.node("Exp", [graph.node("Neg", [r])])
    return graph.node("Mul", [graph.node("Mul", [signal, polynomial]), decay])
