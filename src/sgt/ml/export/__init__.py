"""Offline export of trained predictors to ONNX (docs/onnx.md), built with `onnx.helper`, never
through torch.onnx. `registry` holds the table of exporters by kind, `graph` the builder, `heads`
and `tree_ensemble` the pieces exporters share, `kinds` one module per predictor kind. Nothing
outside `sgt.ml` is imported; no module of `sgt.ml` outside this package imports it.
"""
