"""Export a model to ONNX: the predictor `run_sgt_model` serves, as one self-contained graph.

Only the owner may export, as only the owner may run (a public model of another user is cloned
first: clone copies its weights). Imports storage, `sgt.ml` and the services' context only.
"""

from __future__ import annotations

from sgt.errors import ExportNotSupported, ModelNotFound
from sgt.ml.base import ModelShape, Predictor
from sgt.ml.export.registry import OnnxModel, export_predictor
from sgt.ml.registry import get_model_type
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import models as model_store


def export_model(ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str) -> OnnxModel:
    """The ONNX file of the model's current best weights, the ones `run_model` serves.

    Raises ModelNotFound, or ExportNotSupported for a model without trained weights (an
    untrained model answers runs with initial weights, which are worth nothing offline) or of
    a kind that has no exporter."""
    with ctx.db.quick_read() as reader:
        model = model_store.find_model_to_run(
            reader, owner_id=user.id, app_name=app_name, name=name
        )
    if model is None:
        raise ModelNotFound(f"you have no model '{name}' in app '{app_name}'")
    version = model.version
    if version is None:
        raise ExportNotSupported(
            f"model '{name}' in app '{app_name}' has no trained weights yet: upload train data "
            "and export once its training status shows a checkpoint"
        )
    shape = ModelShape(model.in_size, model.out_size)
    # The cache entry `run_model` uses, so the export is of the very weights runs answer with.
    predictor = ctx.model_cache.get(model.id, version, lambda: _load_trained(ctx, model.id))
    if predictor.shape != shape:
        raise ExportNotSupported(f"model '{name}' in app '{app_name}' has no usable weights")
    return export_predictor(predictor)


def _load_trained(ctx: ServiceContext, model_id: int) -> Predictor:
    with ctx.db.read() as session:
        checkpoint = checkpoint_store.load_checkpoint(session, model_id)
        if checkpoint is None:
            raise ExportNotSupported("the model's weights were deleted while exporting")
        model_type, weights = checkpoint.model_type, checkpoint.weights
    return get_model_type(model_type).load(weights, device=ctx.device)
