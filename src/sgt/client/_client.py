"""`Client`: one method per endpoint of the SGT API, with chunking of big batches and retries of
the calls that are safe to repeat.

Standard library only, relative imports only, never the server packages: the wire is the contract.
"""

from __future__ import annotations

import base64
import datetime
import time
from collections.abc import Callable
from typing import Any

from ._binary import (
    float32_matrix,
    rows_of_answer,
    run_body,
)
from ._chunks import (
    as_rows,
    check_row_lengths,
    chunk_bounds,
    encode_body,
    split_rows,
)
from ._errors import (
    RunWeightsNetException,
    UnexpectedResponse,
    UploadDataException,
)
from ._transport import UrllibTransport
from ._wire import Wire, expect_answer

DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_CHUNK_ROWS = 5000  # figures: README, "Client reference"
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 0.5
END_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class Client(Wire):
    """A user's connection to one SGT server, e.g. `Client("http://127.0.0.1:6006", id, key)`.

    The client adds the API prefix `/sgt` (unless `base_url` already ends with it). Every method
    raises an `ApiError` subclass named by the server's `exception` when it answers 400, and a
    `TransportError` subclass when no valid reply comes back.

    `run` and `upload_train_data` send `chunk_rows` rows per request. Calls that are safe to
    repeat (`check_auth`, `list_*`, `run`, `train_status`) are retried up to `retries` times on
    a lost or refused connection, after `backoff_seconds`, doubling each time; the others are
    retried only when the connection was refused, that is when nothing reached the server.
    `sleep` replaces `time.sleep` between retries (tests pass a recorder).

    `binary` chooses how `run` and `upload_train_data` carry numbers: None (the default) uses
    the binary extension (docs/binary.md) when the server advertises it in its
    `X-SGT-Extensions` header, learnt from the first reply and kept for the client's life
    (one small `list_model_type` request first if no reply has come yet), and plain JSON
    otherwise; True always uses it, False never. The values are the same float32 numbers
    either way.
    """

    def __init__(
        self,
        base_url: str,
        secret_id: str,
        secret_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: Any = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        retries: int = DEFAULT_RETRIES,
        backoff_seconds: float = DEFAULT_BACKOFF_SECONDS,
        sleep: Callable[[float], None] | None = None,
        binary: bool | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://, got " + repr(base_url))
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be an integer >= 1, got {chunk_rows!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
        if binary not in (None, True, False):
            raise ValueError(f"binary must be None, True or False, got {binary!r}")
        base_url = base_url.rstrip("/")
        self.api_url = base_url if base_url.endswith("/sgt") else base_url + "/sgt"
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.timeout = timeout
        self.chunk_rows = chunk_rows
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._transport = UrllibTransport() if transport is None else transport
        self._sleep = time.sleep if sleep is None else sleep
        self.binary = binary
        self._server_has_binary: bool | None = None  # unknown until the first reply

    def __repr__(self) -> str:
        return f"Client({self.api_url!r}, secret_id={self.secret_id!r})"

    # Auth

    def check_auth(self) -> bool:
        """Whether this client's secret_id and secret_key are valid now; never raises for bad
        ones."""
        result = self._call("/public/check_auth_token", self._auth(), is_idempotent=True)
        return expect_answer(result, bool, "/public/check_auth_token")

    def update_auth_token(
        self,
        key: str,
        secret_id: str,
        secret_key: str,
        doc: str | None = None,
        end_time: str | datetime.datetime | None = None,
    ) -> None:
        """Create the user `secret_id`, or replace its key, doc and end_time (admin only).

        `key` is the server's system key; this client's own credentials are not used.
        `end_time` is "YYYY-MM-DD HH:MM:SS" in UTC or a datetime (naive means UTC); None means
        no expiry. Raises `AuthException` for a wrong system key.
        """
        body: dict[str, Any] = {"key": key, "secret_id": secret_id, "secret_key": secret_key}
        if doc is not None:
            body["doc"] = doc
        if end_time is not None:
            body["end_time"] = format_end_time(end_time)
        self._call("/private/update_auth_token", body, is_idempotent=False)

    # Models

    def create_model(
        self,
        name: str,
        app_name: str,
        in_size: int,
        out_size: int,
        model_type: str = "std",
        client_data: Any = None,
        is_public: bool = False,
        max_influences: int | None = None,
    ) -> None:
        """Create a model; raises `CreateWeightsNetException` if the name is taken, the type
        unknown or a size out of bounds. `max_influences` (the `weights` type only, an
        extension) caps the non-zero entries of each predicted row; None sends no field."""
        body = self._auth(name=name, app_name=app_name)
        body.update(
            model_type=model_type,
            client_data=client_data,
            in_size=in_size,
            out_size=out_size,
            is_public=is_public,
        )
        if max_influences is not None:
            body["max_influences"] = max_influences
        self._call("/public/create_sgt_model", body, is_idempotent=False)

    def delete_model(self, name: str, app_name: str) -> None:
        """Delete a model with its checkpoints and training data; `FindModelException` if none."""
        body = self._auth(name=name, app_name=app_name)
        self._call("/public/delete_sgt_model", body, is_idempotent=False)

    def update_client_data(self, name: str, app_name: str, client_data: Any) -> None:
        """Replace a model's client_data (any JSON value); `FindModelException` if no such model."""
        body = self._auth(name=name, app_name=app_name, client_data=client_data)
        self._call("/public/update_sgt_model_client_data", body, is_idempotent=False)

    def list_my_models(self) -> list[dict[str, Any]]:
        """This user's model records, all apps."""
        result = self._call("/public/read_my_sgt_model", self._auth(), is_idempotent=True)
        return expect_answer(result, list, "/public/read_my_sgt_model")

    def list_public_models(self) -> list[dict[str, Any]]:
        """Every user's public model records."""
        result = self._call("/public/read_public_sgt_model", self._auth(), is_idempotent=True)
        return expect_answer(result, list, "/public/read_public_sgt_model")

    def clone_model(self, author_unique_id: str, name: str, new_name: str, app_name: str) -> None:
        """Copy `author_unique_id`'s model `name` (public, or this user's own) to this user as
        `new_name`, with its weights but not its training data. Raises
        `CloneWeightsNetToMineException` if new_name is taken or the source is not visible."""
        body = self._auth(
            new_name=new_name, app_name=app_name, author_unique_id=author_unique_id, name=name
        )
        self._call("/public/clone_sgt_model_to_mine", body, is_idempotent=False)

    def list_model_types(self) -> list[str]:
        """The model types the server offers, e.g. ["std", ...]; needs no credentials."""
        result = self._call("/public/list_model_type", {}, is_idempotent=True)
        return expect_answer(result, list, "/public/list_model_type")

    # Inference and training data

    def run(
        self,
        name: str,
        app_name: str,
        data: Any,
        progress: Callable[[int, int], None] | None = None,
        return_std: bool = False,
    ) -> Any:
        """Run the model on `data` (n rows of in_size numbers: lists, or anything with
        `.tolist()` such as a numpy array) and return n rows of out_size numbers, in order;
        with `return_std=True`, the dict of `run_with_std` instead.

        Sent `chunk_rows` rows per request; `progress(done_rows, total_rows)` is called after
        each. Raises `RunWeightsNetException` for data of the wrong shape or non-finite numbers
        (ragged rows and NaN are caught before anything is sent).
        """
        if return_std:
            return self.run_with_std(name, app_name, data, progress)
        if self._uses_binary():
            return self._run_binary(name, app_name, data, progress)
        path = "/public/run_sgt_model"
        rows = as_rows(data, field="data", error=RunWeightsNetException)
        check_row_lengths(rows, field="data", error=RunWeightsNetException)
        outputs: list[list[float]] = []
        for start, chunk in split_rows(rows, self.chunk_rows):
            body = self._auth(name=name, app_name=app_name, data=chunk)
            encoded = encode_body(body, field="data", error=RunWeightsNetException)
            result = self._call_chunk(path, encoded, rows_done=start, is_idempotent=True)
            result = expect_answer(result, list, path)
            if len(result) != len(chunk):
                raise UnexpectedResponse(
                    f"{path} answered {len(result)} rows for {len(chunk)}",
                    status_code=200,
                )
            outputs.extend(result)
            if progress is not None:
                progress(start + len(chunk), len(rows))
        return outputs

    run_model = run

    def run_with_std(
        self,
        name: str,
        app_name: str,
        data: Any,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, list[Any]]:
        """`run(..., return_std=True)`: `{"mean": n rows, "std": n rows, "out_of_range": n
        booleans}`; mean ± 1.645·std is a calibrated 90 % interval, and `out_of_range` marks rows
        with an input outside the training range (docs/uncertainty.md). Chunked as `run`."""
        path = "/public/run_sgt_model"
        answer: dict[str, list[Any]] = {"mean": [], "std": [], "out_of_range": []}
        if self._uses_binary():
            matrix = float32_matrix(data, field="data", error=RunWeightsNetException)
            fields = self._auth(
                name=name, app_name=app_name, response_format="binary", return_std=True
            )
            for start, stop in chunk_bounds(matrix.rows, self.chunk_rows):
                encoded = run_body(fields, matrix, start, stop)
                result = self._call_chunk(path, encoded, rows_done=start, is_idempotent=True)
                result = _with_std_fields(result, rows=stop - start, path=path)
                for key in ("mean", "std"):
                    answer[key].extend(rows_of_answer(result[key], rows=stop - start, path=path))
                answer["out_of_range"].extend(result["out_of_range"])
                if progress is not None:
                    progress(stop, matrix.rows)
            return answer
        rows = as_rows(data, field="data", error=RunWeightsNetException)
        check_row_lengths(rows, field="data", error=RunWeightsNetException)
        for start, chunk in split_rows(rows, self.chunk_rows):
            body = self._auth(name=name, app_name=app_name, data=chunk, return_std=True)
            encoded = encode_body(body, field="data", error=RunWeightsNetException)
            result = self._call_chunk(path, encoded, rows_done=start, is_idempotent=True)
            result = _with_std_fields(result, rows=len(chunk), path=path)
            for key in answer:
                if len(result[key]) != len(chunk):
                    raise UnexpectedResponse(
                        f"{path} answered {len(result[key])} {key} rows for {len(chunk)}",
                        status_code=200,
                    )
                answer[key].extend(result[key])
            if progress is not None:
                progress(start + len(chunk), len(rows))
        return answer

    def suggest_samples(self, name: str, app_name: str, candidates: Any, k: int) -> list[int]:
        """Which `k` of the `candidates` (m rows of in_size numbers) to label next: k distinct
        indices into them, the rows whose labels would most improve the model, chosen as a
        batch. Raises `RunWeightsNetException` for bad candidates or k outside 1..m. One
        request, however many candidates (the choice depends on all of them)."""
        path = "/public/suggest_sgt_model_samples"
        fields = self._auth(name=name, app_name=app_name, k=k)
        if self._uses_binary():
            matrix = float32_matrix(candidates, field="candidates", error=RunWeightsNetException)
            encoded = run_body(fields, matrix, 0, matrix.rows, field="candidates")
        else:
            rows = as_rows(candidates, field="candidates", error=RunWeightsNetException)
            check_row_lengths(rows, field="candidates", error=RunWeightsNetException)
            body = {**fields, "candidates": rows}
            encoded = encode_body(body, field="candidates", error=RunWeightsNetException)
        result = self._call_chunk(path, encoded, rows_done=0, is_idempotent=True)
        indices: list[int] = expect_answer(result, list, path)
        return indices

    def upload_train_data(
        self,
        name: str,
        app_name: str,
        inputs: Any = None,
        labels: Any = None,
        pairs: Any = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Append training samples, given as `inputs` and `labels` (row i of each is one sample)
        or as `pairs` of `[input, label]`; lists or anything with `.tolist()`.

        Sent `chunk_rows` samples per request, each committed when it returns; `progress` as in
        `run`. Every chunk is checked and encoded before the first is sent, so ragged rows and
        NaN raise `UploadDataException` with nothing uploaded. A later failure (e.g. the network)
        sets `rows_done` on the exception: that many samples were committed.
        """
        if self._uses_binary():
            self._upload_binary(name, app_name, inputs, labels, pairs, progress)
            return
        train_data = self._train_data(inputs, labels, pairs)
        bodies: list[tuple[int, int, bytes]] = []
        for start, chunk in split_rows(train_data, self.chunk_rows):
            body = self._auth(name=name, app_name=app_name, train_data=chunk)
            encoded = encode_body(body, field="train_data", error=UploadDataException)
            bodies.append((start, len(chunk), encoded))
        path = "/public/upload_sgt_model_train_data"
        for start, size, encoded in bodies:
            self._call_chunk(path, encoded, rows_done=start, is_idempotent=False)
            if progress is not None:
                progress(start + size, len(train_data))

    def train_status(self, name: str, app_name: str) -> dict[str, Any]:
        """The model's training status object (state, sample count, steps, losses, ...)."""
        path = "/public/get_sgt_model_train_status"
        result = self._call(path, self._auth(name=name, app_name=app_name), is_idempotent=True)
        return expect_answer(result, dict, path)

    def clear_train_data(self, name: str, app_name: str) -> None:
        """Delete all training data uploaded to the model."""
        body = self._auth(name=name, app_name=app_name)
        self._call("/public/clear_sgt_model_train_data", body, is_idempotent=False)

    # Versions

    def list_versions(self, name: str, app_name: str) -> list[dict[str, Any]]:
        """The model's kept converged versions, newest first: dicts of `version`, `created_at`
        ("YYYY-MM-DD HH:MM:SS", UTC), `sample_count`, `val_loss` and `served`."""
        path = "/public/list_sgt_model_versions"
        result = self._call(path, self._auth(name=name, app_name=app_name), is_idempotent=True)
        return expect_answer(result, list, path)

    def rollback(self, name: str, app_name: str, version: int) -> None:
        """Serve `version` of the model from now on; the next upload trains from it. Raises
        `FindModelException` if the model or the version is unknown."""
        body = self._auth(name=name, app_name=app_name, version=version)
        # Repeating a rollback to the same version leaves the same state: safe to retry.
        self._call("/public/rollback_sgt_model", body, is_idempotent=True)

    def export_onnx(self, name: str, app_name: str, path: Any) -> dict[str, Any]:
        """Write the model's served weights as an ONNX file at `path` (docs/onnx.md); returns how
        to call it: `format`, `opset`, `input` and `output` names, `in_size`, `out_size`.

        A model without trained weights raises RunWeightsNetException."""
        endpoint = "/public/export_sgt_model"
        body = self._auth(name=name, app_name=app_name)
        answer = self._call(endpoint, body, is_idempotent=True)
        result: dict[str, Any] = expect_answer(answer, dict, endpoint)
        encoded = expect_answer(result.pop("base64", None), str, endpoint + " base64")
        content = base64.b64decode(encoded)
        with open(path, "wb") as output:
            output.write(content)
        return result


def format_end_time(end_time: str | datetime.datetime) -> str:
    """The wire form of an end_time: a string is sent as given; a datetime is converted to UTC
    (a naive one is taken as UTC already) and written "YYYY-MM-DD HH:MM:SS"."""
    if isinstance(end_time, str):
        return end_time
    if isinstance(end_time, datetime.datetime):
        if end_time.tzinfo is not None:
            end_time = end_time.astimezone(datetime.timezone.utc)  # noqa: UP017 (3.11+)
        return end_time.strftime(END_TIME_FORMAT)
    raise TypeError("end_time must be a str or a datetime, got " + type(end_time).__name__)


def _with_std_fields(result: Any, *, rows: int, path: str) -> dict[str, Any]:
    """A `return_std` answer: an object with `mean`, `std` and `out_of_range` (`rows` long)."""
    answer = expect_answer(result, dict, path)
    if set(answer) != {"mean", "std", "out_of_range"}:
        raise UnexpectedResponse(f"{path} answered fields {sorted(answer)}", status_code=200)
    flags = answer["out_of_range"]
    if not isinstance(flags, list) or len(flags) != rows:
        raise UnexpectedResponse(f"{path} answered out_of_range for other rows", status_code=200)
    return dict(answer)
