"""Request and response bodies, one class per endpoint, field names exactly as in API.md.

Bodies are decoded with msgspec straight from bytes: strict types (a JSON `"false"` is not a
bool, `true` is not a number), unknown fields ignored. Credentials are typed loosely on purpose:
a missing or non-string secret is an AuthException, not a RequestException.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from sgt.domain.training import TrainingStatus
from sgt.services.users import END_TIME_FORMAT
from sgt.services.versions import VersionInfo

Matrix = list[list[float]]

MAX_INFLUENCES_DOC = (
    "Extension, for model_type `weights` only: each predicted row has at most this many "
    "non-zero entries, still summing to 1 (an integer from 1 to out_size). Omitted or null: "
    "no bound."
)


class Float32Array(msgspec.Struct, kw_only=True):
    """Binary extension (docs/binary.md): a matrix as base64 little-endian float32, row-major.

    Accepted wherever a matrix of numbers is (`data`, `train_data` inputs and labels), and sent
    back for `run_sgt_model` when the request says `"response_format": "binary"`.
    """

    dtype: Literal["float32"]
    shape: list[int]
    base64: bytearray  # decoded by msgspec; a bytearray so numpy views it writable, no copy


class TrainArrays(msgspec.Struct, kw_only=True):
    """Binary extension: `train_data` as two arrays, row i of `inputs` paired with row i of
    `labels`, instead of a list of `[input, label]` pairs."""

    inputs: Float32Array
    labels: Float32Array


class Credentials(msgspec.Struct, kw_only=True):
    secret_id: Any = None
    secret_key: Any = None


class ModelRef(Credentials, kw_only=True):
    name: str
    app_name: str


class UpdateAuthTokenRequest(msgspec.Struct, kw_only=True):
    key: Any = None
    secret_id: str
    secret_key: str
    doc: str | None = None
    end_time: str | None = None


class CheckAuthTokenRequest(Credentials, kw_only=True):
    pass


class CreateModelRequest(ModelRef, kw_only=True):
    model_type: str
    in_size: int
    out_size: int
    client_data: Any = None
    is_public: bool = False
    # Extension (issue 14). Range and type checks are the service's: they answer
    # CreateWeightsNetException, as the other create conditions do.
    max_influences: Annotated[int | None, msgspec.Meta(description=MAX_INFLUENCES_DOC)] = None


class DeleteModelRequest(ModelRef, kw_only=True):
    pass


class UpdateClientDataRequest(ModelRef, kw_only=True):
    client_data: Any = None


class ReadMyModelsRequest(Credentials, kw_only=True):
    pass


class ReadPublicModelsRequest(Credentials, kw_only=True):
    pass


class CloneModelRequest(Credentials, kw_only=True):
    new_name: str
    app_name: str
    author_unique_id: str
    name: str


class RunModelRequest(ModelRef, kw_only=True):
    data: Matrix | Float32Array
    # Extension: "binary" answers a Float32Array object instead of the nested list.
    response_format: Literal["json", "binary"] = "json"
    # Extension: true answers RunWithStdBody (RunWithStdArrays when binary) instead.
    return_std: bool = False


class SuggestSamplesRequest(ModelRef, kw_only=True):
    candidates: Matrix | Float32Array
    k: int


class UploadTrainDataRequest(ModelRef, kw_only=True):
    train_data: list[tuple[list[float], list[float]]] | TrainArrays


class ListModelTypeRequest(msgspec.Struct, kw_only=True):
    pass


class TrainStatusRequest(ModelRef, kw_only=True):
    pass


class ClearTrainDataRequest(ModelRef, kw_only=True):
    pass


class ListVersionsRequest(ModelRef, kw_only=True):
    pass


class RollbackModelRequest(ModelRef, kw_only=True):
    version: int


class ExportModelRequest(ModelRef, kw_only=True):
    pass


class ErrorBody(msgspec.Struct):
    """Every failure: status 400 with this body."""

    exception: str
    message: str


class RunWithStdArrays(msgspec.Struct, kw_only=True):
    """`run_sgt_model` with `"return_std": true` and `"response_format": "binary"`: the mean and
    the standard deviation as Float32Array objects of shape [n, out_size]."""

    mean: Float32Array
    std: Float32Array
    out_of_range: list[bool]


# Response bodies. They are dataclasses, not Structs: the pipeline encodes them with orjson,
# whose float text is the one clients have always received, and msgspec derives their OpenAPI
# schemas. The model record is `sgt.domain.models.ModelRecord` itself.


@dataclass(frozen=True)
class TrainStatusBody:
    """What `get_sgt_model_train_status` answers (extension; times in UTC). The `val_*` figures
    are the served weights' errors on their validation rows in target units, null without
    validation rows; `val_mae_per_output` is null above 1024 outputs
    (`sgt.domain.training.MAX_PER_OUTPUT_ERRORS`)."""

    state: str
    sample_count: int
    trained_sample_count: int
    steps: int
    train_loss: float | None
    val_loss: float | None
    loss_history: list[list[float | None]]
    updated_at: str | None
    val_rows: int | None
    val_mae: float | None
    val_p95_abs_error: float | None
    val_max_abs_error: float | None
    val_mae_per_output: list[float] | None

    @classmethod
    def of(cls, status: TrainingStatus) -> TrainStatusBody:
        return cls(
            state=status.state.value,
            sample_count=status.sample_count,
            trained_sample_count=status.trained_sample_count,
            steps=status.steps,
            train_loss=status.train_loss,
            val_loss=status.val_loss,
            loss_history=status.loss_history,
            updated_at=None
            if status.updated_at is None
            else status.updated_at.strftime(END_TIME_FORMAT),
            val_rows=status.val_rows,
            val_mae=status.val_mae,
            val_p95_abs_error=status.val_p95_abs_error,
            val_max_abs_error=status.val_max_abs_error,
            val_mae_per_output=status.val_mae_per_output,
        )


@dataclass(frozen=True)
class ModelVersionBody:
    """One entry of `list_sgt_model_versions` (extension): a kept converged version, its time
    (UTC, the database clock), the sample count its weights saw, its validation error, and
    whether it is the one served now."""

    version: int
    created_at: str
    sample_count: int
    val_loss: float | None
    served: bool

    @classmethod
    def of(cls, info: VersionInfo) -> ModelVersionBody:
        return cls(
            version=info.version,
            created_at=info.created_at.strftime(END_TIME_FORMAT),
            sample_count=info.sample_count,
            val_loss=info.val_loss,
            served=info.is_served,
        )


@dataclass(frozen=True)
class ExportModelBody:
    """What `export_sgt_model` answers (extension, docs/onnx.md): the .onnx file in base64 and
    how to call it (float32 `input` of shape [n, in_size] to `output` [n, out_size])."""

    format: Literal["onnx"]
    opset: int
    input: str
    output: str
    in_size: int
    out_size: int
    base64: str


@dataclass(frozen=True)
class RunWithStdBody:
    """`run_sgt_model` with `"return_std": true` (extension): n × out_size means and calibrated
    standard deviations (mean ± 1.645·std is a 90 % interval), and per row whether an input lies
    outside the training inputs' range (docs/uncertainty.md). The handler passes numpy arrays,
    which orjson writes as these lists."""

    mean: Matrix
    std: Matrix
    out_of_range: list[bool]
