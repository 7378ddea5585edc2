"""Exporter of the GP posterior mean: the Matern-5/2 (or RBF) kernel between the inputs and the
conditioning rows, times the weights, with the arithmetic of `GpPredictor.predict`.

The graph computes in float64 between its float32 input and output, as the server does
(`GpPredictor`), so the two agree to float32 rounding of the same float64 posterior mean.
Built from the predictor's public tensors. Imports the family and the export helpers only.
"""

from __future__ import annotations

import numpy as np
import torch
from onnx import TensorProto

from sgt.ml.export.graph import GraphBuilder
from sgt.ml.families.gp_posterior import F64, GpPredictor


def export_gp(graph: GraphBuilder, predictor: GpPredictor, inputs: str) -> str:
    def constant(hint: str, tensor: torch.Tensor) -> str:
        return graph.constant(hint, tensor.detach().to(F64).cpu().numpy(), dtype=np.float64)

    hyper = predictor.hyper
    lengths = torch.exp(hyper.log_lengths.to(F64))
    scale = predictor.inputs_scaler.scale.to(F64) * lengths
    rows = (predictor.rows.to(F64) / lengths).cpu()
    # Raw inputs map straight to length-scaled ones, x * gain + offset, as `predict` does.
    x = graph.node("Cast", [inputs], to=TensorProto.DOUBLE)
    scaled = graph.node("Mul", [x, constant("gain", 1.0 / scale)])
    scaled = graph.node("Add", [scaled, constant("offset", -predictor.inputs_scaler.mean / scale)])
    distances = _squared_distances(graph, scaled, rows)
    signal = constant("signal", torch.exp(hyper.log_signal))
    if hyper.family == "rbf":
        exponent = graph.node(
            "Mul", [graph.constant("minus_half", -0.5, dtype=np.float64), distances]
        )
        kernel = graph.node("Mul", [signal, graph.node("Exp", [exponent])])
    else:
        kernel = _matern52(graph, distances, signal)
    mean = graph.node("MatMul", [kernel, constant("weights", predictor.weights)])
    mean = graph.node("Mul", [mean, constant("out_scale", predictor.targets_scaler.scale)])
    values = graph.node("Add", [constant("out_mean", predictor.targets_scaler.mean), mean])
    return graph.node("Cast", [values], to=TensorProto.FLOAT)


def _squared_distances(graph: GraphBuilder, scaled: str, rows: torch.Tensor) -> str:
    """|a|^2 + |b|^2 - 2 a.b, clamped at 0, as `numerics.kernels.squared_distances`."""
    rows_t = graph.constant("rows_t", rows.T.contiguous().numpy(), dtype=np.float64)
    cross = graph.node("MatMul", [scaled, rows_t])
    axes = graph.constant("axes", np.array([1], dtype=np.int64))
    left = graph.node("ReduceSum", [graph.node("Mul", [scaled, scaled]), axes], keepdims=1)
    right = graph.constant("rows_sq", rows.square().sum(dim=1).numpy(), dtype=np.float64)
    twice = graph.node("Mul", [graph.constant("two", 2.0, dtype=np.float64), cross])
    summed = graph.node("Sub", [graph.node("Add", [left, right]), twice])
    return graph.node("Max", [summed, graph.constant("zero", 0.0, dtype=np.float64)])


def _matern52(graph: GraphBuilder, distances: str, signal: str) -> str:
    """signal * (1 + r + r^2 / 3) * exp(-r), r = sqrt(5 max(d, 1e-12))."""

    def number(hint: str, value: float) -> str:
        return graph.constant(hint, value, dtype=np.float64)

    floored = graph.node("Max", [distances, number("floor", 1e-12)])
    r = graph.node("Sqrt", [graph.node("Mul", [number("five", 5.0), floored])])
    third = graph.node("Div", [graph.node("Mul", [r, r]), number("three", 3.0)])
    polynomial = graph.node("Add", [graph.node("Add", [number("one", 1.0), r]), third])
    decay = graph.node("Exp", [graph.node("Neg", [r])])
    return graph.node("Mul", [graph.node("Mul", [signal, polynomial]), decay])
