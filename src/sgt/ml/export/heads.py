"""Reusable pieces of exported graphs: an affine map, a weighted sum, and the heads that make
rows non-negative and sum to 1. Written for families and types being added (PCA-compressed
outputs, the `weights` type's constraints) so that their exporters only wire them. Imports numpy
and `graph` only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from sgt.ml.export.graph import GraphBuilder


def add_affine(graph: GraphBuilder, inputs: str, weight: np.ndarray, bias: np.ndarray) -> str:
    """inputs @ weight + bias in float32: a linear model, or a PCA reconstruction
    (coefficients @ components + mean)."""
    product = graph.node("MatMul", [inputs, graph.constant("weight", weight, dtype=np.float32)])
    return graph.node("Add", [product, graph.constant("bias", bias, dtype=np.float32)])


def add_scaling(graph: GraphBuilder, inputs: str, *, scale: np.ndarray, shift: np.ndarray) -> str:
    """inputs * scale + shift per column (a standardiser's inverse; its forward map is
    scale = 1 / s, shift = -m / s)."""
    scaled = graph.node("Mul", [inputs, graph.constant("scale", scale, dtype=np.float32)])
    return graph.node("Add", [scaled, graph.constant("shift", shift, dtype=np.float32)])


def add_weighted_sum(graph: GraphBuilder, parts: Sequence[str], weights: Sequence[float]) -> str:
    """sum_k weights[k] * parts[k], accumulated in order (as a blend serves it)."""
    total = graph.node("Mul", [parts[0], graph.constant("share", weights[0], dtype=np.float32)])
    for part, weight in zip(parts[1:], weights[1:], strict=True):
        weighted = graph.node("Mul", [part, graph.constant("share", weight, dtype=np.float32)])
        total = graph.node("Add", [total, weighted])
    return total


def add_softmax(graph: GraphBuilder, inputs: str) -> str:
    """Each row mapped to positive values summing to 1."""
    return graph.node("Softmax", [inputs], axis=-1)


def add_simplex_normalise(graph: GraphBuilder, inputs: str, *, floor: float = 1e-12) -> str:
    """Each row clipped at 0 and divided by its sum (a row of zeros stays 0: its sum is floored)."""
    zero = graph.constant("zero", 0.0, dtype=np.float32)
    clipped = graph.node("Max", [inputs, zero])
    axes = graph.constant("axes", np.array([-1], dtype=np.int64))
    total = graph.node("ReduceSum", [clipped, axes], keepdims=1)
    floored = graph.node("Max", [total, graph.constant("floor", floor, dtype=np.float32)])
    return graph.node("Div", [clipped, floored])


def add_top_k(graph: GraphBuilder, inputs: str, *, k: int) -> str:
    """Each row's k largest entries kept, the others set to 0 (`max_influences`); entries tied
    with the k-th largest are kept too. Follow with `add_simplex_normalise` to sum to 1 again."""
    k_name = graph.constant("k", np.array([k], dtype=np.int64))
    values, _ = graph.node_outputs("TopK", [inputs, k_name], count=2)
    # TopK's first output is sorted, largest first: its last column is each row's k-th value.
    starts = graph.constant("start", np.array([k - 1], dtype=np.int64))
    ends = graph.constant("end", np.array([k], dtype=np.int64))
    axes = graph.constant("axes", np.array([-1], dtype=np.int64))
    kth = graph.node("Slice", [values, starts, ends, axes])
    kept = graph.node("GreaterOrEqual", [inputs, kth])
    zeros = graph.constant("zero", 0.0, dtype=np.float32)
    return graph.node("Where", [kept, inputs, zeros])


def add_simplex_projection(
    graph: GraphBuilder, inputs: str, *, width: int, max_nonzero: int | None = None
) -> str:
    """Each row's Euclidean projection onto {w >= 0, sum w = 1}, k-sparse with `max_nonzero`,
    as `sgt.ml.numerics.simplex.project_to_simplex` computes it (in float64): the k largest
    entries sorted, their running sums, the threshold tau, then max(v - tau, 0) on those k."""
    k = width if max_nonzero is None else min(max_nonzero, width)
    values = graph.node("Cast", [inputs], to=onnx.TensorProto.DOUBLE)
    k_name = graph.constant("k", np.array([k], dtype=np.int64))
    descending, _ = graph.node_outputs("TopK", [values, k_name], count=2)
    one = graph.constant("one", 1.0, dtype=np.float64)
    running = graph.node("CumSum", [descending, graph.constant("axis", 1, dtype=np.int64)])
    excess = graph.node("Sub", [running, one])
    ranks = graph.constant("ranks", np.arange(1, k + 1, dtype=np.float64))
    is_support = graph.node("Greater", [descending, graph.node("Div", [excess, ranks])])
    axes = graph.constant("axes", np.array([-1], dtype=np.int64))
    support = graph.node(
        "ReduceSum",
        [graph.node("Cast", [is_support], to=onnx.TensorProto.DOUBLE), axes],
        keepdims=1,
    )
    support = graph.node("Max", [support, one])
    last = graph.node("Cast", [graph.node("Sub", [support, one])], to=onnx.TensorProto.INT64)
    tau = graph.node("Div", [graph.node("GatherElements", [excess, last], axis=1), support])
    zero = graph.constant("zero", 0.0, dtype=np.float64)
    projected = graph.node("Max", [graph.node("Sub", [values, tau]), zero])
    if k < width:
        starts = graph.constant("start", np.array([k - 1], dtype=np.int64))
        ends = graph.constant("end", np.array([k], dtype=np.int64))
        kth = graph.node("Slice", [descending, starts, ends, axes])
        kept = graph.node("GreaterOrEqual", [values, kth])
        projected = graph.node("Where", [kept, projected, zero])
    return graph.node("Cast", [projected], to=onnx.TensorProto.FLOAT)
