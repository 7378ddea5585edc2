"""The SGT client: a standard-library-only SDK for the SGT HTTP API (see API.md).

It imports nothing outside the standard library and only itself relatively, so this folder also
works copied alone into a DCC plug-in (Maya, Houdini, Blender) under another name, on Python 3.7+.

    from sgt.client import Client, FindModelException

    client = Client("http://127.0.0.1:6006", secret_id, secret_key)
    client.create_model("arm", "rig", in_size=64, out_size=12)
    client.upload_train_data("arm", "rig", inputs=x, labels=y, progress=print)
    y_hat = client.run("arm", "rig", x)
"""

from ._client import Client, format_end_time
from ._errors import (
    ApiError,
    AuthException,
    CloneWeightsNetToMineException,
    ConnectFailed,
    ConnectionLost,
    CreateWeightsNetException,
    FindModelException,
    InternalException,
    RequestException,
    RequestTimedOut,
    RunWeightsNetException,
    SgtClientError,
    TransportError,
    UnexpectedResponse,
    UploadDataException,
)
from ._transport import BaseTransport, UrllibTransport

__all__ = [
    "ApiError",
    "AuthException",
    "BaseTransport",
    "Client",
    "CloneWeightsNetToMineException",
    "ConnectFailed",
    "ConnectionLost",
    "CreateWeightsNetException",
    "FindModelException",
    "InternalException",
    "RequestException",
    "RequestTimedOut",
    "RunWeightsNetException",
    "SgtClientError",
    "TransportError",
    "UnexpectedResponse",
    "UploadDataException",
    "UrllibTransport",
    "format_end_time",
]
