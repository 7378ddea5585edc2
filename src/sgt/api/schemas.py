"""Request bodies, one class per endpoint, field names exactly as in API.md.

Bodies are decoded with msgspec straight from bytes: strict types (a JSON `"false"` is not a
bool, `true` is not a number), unknown fields ignored. Credentials are typed loosely on purpose:
a missing or non-string secret is an AuthException, not a RequestException.
"""

from __future__ import annotations

from typing import Any

import msgspec

Matrix = list[list[float]]


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
    data: Matrix


class UploadTrainDataRequest(ModelRef, kw_only=True):
    train_data: list[tuple[list[float], list[float]]]


class ListModelTypeRequest(msgspec.Struct, kw_only=True):
    pass


class TrainStatusRequest(ModelRef, kw_only=True):
    pass


class ClearTrainDataRequest(ModelRef, kw_only=True):
    pass


class ErrorBody(msgspec.Struct):
    """Every failure: status 400 with this body."""

    exception: str
    message: str


class ModelRecordBody(msgspec.Struct):
    user_unique_id: str
    name: str
    client_data: Any
    app_name: str
    model_type: str
    in_size: int
    out_size: int
    is_public: bool


class TrainStatusBody(msgspec.Struct):
    state: str
    sample_count: int
    trained_sample_count: int
    steps: int
    train_loss: float | None
    val_loss: float | None
    loss_history: list[list[float | None]]
    updated_at: str | None
