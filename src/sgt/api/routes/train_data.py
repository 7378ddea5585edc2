"""Training data: upload, clear, and the training status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from sgt.api.binary import pairs_of
from sgt.api.errors import UPLOAD_EXCEPTION
from sgt.api.operations import Operation, add_operation
from sgt.api.schemas import ClearTrainDataRequest, TrainStatusRequest, UploadTrainDataRequest
from sgt.services import samples
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser

router = APIRouter(tags=["training"])


def upload(ctx: ServiceContext, user: CurrentUser | None, request: UploadTrainDataRequest) -> None:
    assert user is not None
    samples.upload_samples(
        ctx,
        user,
        app_name=request.app_name,
        name=request.name,
        train_data=pairs_of(request.train_data),
    )


def train_status(
    ctx: ServiceContext, user: CurrentUser | None, request: TrainStatusRequest
) -> dict[str, Any]:
    assert user is not None
    status = samples.read_training_status(ctx, user, app_name=request.app_name, name=request.name)
    return {
        "state": status.state.value,
        "sample_count": status.sample_count,
        "trained_sample_count": status.trained_sample_count,
        "steps": status.steps,
        "train_loss": status.train_loss,
        "val_loss": status.val_loss,
        "loss_history": status.loss_history,
        "updated_at": None
        if status.updated_at is None
        else status.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
    }


def clear(ctx: ServiceContext, user: CurrentUser | None, request: ClearTrainDataRequest) -> None:
    assert user is not None
    samples.clear_samples(ctx, user, app_name=request.app_name, name=request.name)


add_operation(
    router,
    Operation(
        "/public/upload_sgt_model_train_data",
        UploadTrainDataRequest,
        UPLOAD_EXCEPTION,
        "Append [input, label] pairs; training starts",
        notes="Binary extension (docs/binary.md): `train_data` may also be "
        '`{"inputs": Float32Array, "labels": Float32Array}`, row i of `inputs` paired with '
        "row i of `labels`; the answer is the same `null`.",
    ),
    upload,
)
add_operation(
    router,
    Operation(
        "/public/get_sgt_model_train_status",
        TrainStatusRequest,
        None,
        "Training state, sample counts, losses (extension)",
    ),
    train_status,
)
add_operation(
    router,
    Operation(
        "/public/clear_sgt_model_train_data",
        ClearTrainDataRequest,
        None,
        "Remove a model's training data, keep its weights (extension)",
    ),
    clear,
)
