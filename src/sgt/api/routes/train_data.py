"""Training data: upload, clear, and the training status."""

from __future__ import annotations

from sgt.api.binary import pairs_of
from sgt.api.errors import UPLOAD_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import (
    ClearTrainDataRequest,
    TrainStatusBody,
    TrainStatusRequest,
    UploadTrainDataRequest,
)
from sgt.services import samples
from sgt.services.context import ServiceContext
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["training"])


def upload(ctx: ServiceContext, user: CurrentUser, request: UploadTrainDataRequest) -> None:
    samples.upload_samples(
        ctx,
        user,
        app_name=request.app_name,
        name=request.name,
        train_data=pairs_of(request.train_data),
    )


def train_status(
    ctx: ServiceContext, user: CurrentUser, request: TrainStatusRequest
) -> TrainStatusBody:
    status = samples.read_training_status(ctx, user, app_name=request.app_name, name=request.name)
    return TrainStatusBody.of(status)


def clear(ctx: ServiceContext, user: CurrentUser, request: ClearTrainDataRequest) -> None:
    samples.clear_samples(ctx, user, app_name=request.app_name, name=request.name)


router.add_authenticated(
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
router.add_authenticated(
    Operation(
        "/public/get_sgt_model_train_status",
        TrainStatusRequest,
        None,
        "Training state, sample counts, losses (extension)",
        response_type=TrainStatusBody,
    ),
    train_status,
)
router.add_authenticated(
    Operation(
        "/public/clear_sgt_model_train_data",
        ClearTrainDataRequest,
        None,
        "Remove a model's training data, keep its weights (extension)",
    ),
    clear,
)
