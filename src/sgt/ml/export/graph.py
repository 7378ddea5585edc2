"""A small builder of ONNX graphs over `onnx.helper`: constants, nodes with fresh names, and the
dispatch from a predictor to the exporter of its kind. Exporters (one module per predictor kind)
write into it; `sgt.ml.export.registry` gives it the table of exporters. Imports onnx, numpy,
`sgt.errors` and `sgt.ml.base` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from sgt.errors import ExportNotSupported
from sgt.ml.base import Predictor

# Opset 17 (ONNX 1.12, 2022) is loaded by every onnxruntime since 1.12, which is older than the
# runtimes Maya, Houdini's ONNX Inference SOP and Unreal's NNE ship today; every operator used
# here exists unchanged since opset 13. ai.onnx.ml 3 (TreeEnsembleRegressor) comes with it.
OPSET = 17
ML_OPSET = 3
ML_DOMAIN = "ai.onnx.ml"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
# The producer written into the file; readers show it.
PRODUCER = "sgt"


class Exporter(Protocol):
    """Writes the nodes computing `predictor.predict` from the float32 (n, in_size) tensor
    `inputs` into `graph`; returns the name of its float32 (n, out_size) result."""

    def __call__(self, graph: GraphBuilder, predictor: Any, inputs: str) -> str: ...


class GraphBuilder:
    """Collects nodes and constants of one graph; names are unique by construction."""

    def __init__(self, exporters: Mapping[str, Exporter]) -> None:
        self._exporters = exporters
        self._nodes: list[onnx.NodeProto] = []
        self._constants: list[onnx.TensorProto] = []
        self._count = 0
        self.uses_ml_domain = False

    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, hint: str, values: np.ndarray | float | int, *, dtype: Any = None) -> str:
        """A constant tensor (an initializer) of `values`, cast to `dtype` when given."""
        array = np.asarray(values, dtype=dtype)
        name = self._fresh(hint)
        self._constants.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], *, domain: str = "", **attributes: Any) -> str:
        """One node of `op` with a single output; returns the output's name."""
        return self.node_outputs(op, inputs, count=1, domain=domain, **attributes)[0]

    def node_outputs(
        self, op: str, inputs: Sequence[str], *, count: int, domain: str = "", **attributes: Any
    ) -> list[str]:
        """One node of `op` with `count` outputs (TopK has two); returns their names."""
        outputs = [self._fresh(op.lower()) for _ in range(count)]
        self._nodes.append(
            helper.make_node(
                op, list(inputs), outputs, name=outputs[0], domain=domain or None, **attributes
            )
        )
        if domain == ML_DOMAIN:
            self.uses_ml_domain = True
        return outputs

    def add_predictor(self, predictor: Predictor, inputs: str) -> str:
        """The exporter of `predictor.kind` applied to `inputs`; raises ExportNotSupported for
        a kind that has none."""
        exporter = self._exporters.get(predictor.kind)
        if exporter is None:
            known = ", ".join(sorted(self._exporters))
            raise ExportNotSupported(
                f"models of kind '{predictor.kind}' cannot be exported to ONNX yet "
                f"(exportable kinds: {known})"
            )
        return exporter(self, predictor, inputs)

    def to_model(self, *, inputs: str, outputs: str, in_size: int, out_size: int) -> bytes:
        """The serialised, checked model with float32 [n, in_size] in, [n, out_size] out."""
        self._nodes.append(helper.make_node("Identity", [outputs], [OUTPUT_NAME], name="result"))
        graph = helper.make_graph(
            self._nodes,
            "sgt_model",
            [helper.make_tensor_value_info(inputs, TensorProto.FLOAT, ["n", in_size])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n", out_size])],
            initializer=self._constants,
        )
        opsets = [helper.make_opsetid("", OPSET)]
        if self.uses_ml_domain:
            opsets.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
        model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER)
        # The IR version every runtime that loads opset 17 reads (onnx 1.12's).
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        content: bytes = model.SerializeToString()
        return content
