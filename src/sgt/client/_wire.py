"""`Wire`: how a `Client`'s requests travel: JSON bodies over its transport, big arrays as
binary chunks, retries of what is safe to repeat, and whether the server speaks the binary
extension (learnt from the first reply's `X-SGT-Extensions` header). The endpoint methods live
in `_client.py`.

Standard library only, relative imports only, never the server packages: the wire is the contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ._binary import (
    BINARY_EXTENSION,
    EXTENSIONS_HEADER,
    float32_matrix,
    rows_of_answer,
    run_body,
    train_matrices,
    upload_body,
)
from ._chunks import as_rows, check_pairs, chunk_bounds, pair_rows
from ._errors import (
    ApiError,
    ConnectFailed,
    ConnectionLost,
    RunWeightsNetException,
    SgtClientError,
    TransportError,
    UnexpectedResponse,
    UploadDataException,
    api_error_from_body,
)

MAX_BACKOFF_SECONDS = 8.0

_REQUEST_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "sgt-client",
}


class Wire:
    """The sending half of `Client`; `Client.__init__` sets every attribute named here."""

    api_url: str
    timeout: float
    retries: int
    backoff_seconds: float
    binary: bool | None
    _transport: Any
    _sleep: Callable[[float], None]
    _server_has_binary: bool | None
    secret_id: str
    secret_key: str
    chunk_rows: int

    def _auth(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"secret_id": self.secret_id, "secret_key": self.secret_key}
        body.update(fields)
        return body

    def _train_data(self, inputs: Any, labels: Any, pairs: Any) -> list[Any]:
        error = UploadDataException
        if pairs is not None:
            if inputs is not None or labels is not None:
                raise ValueError("pass either inputs and labels, or pairs, not both")
            rows = as_rows(pairs, field="pairs", error=error)
            check_pairs(rows, error=error)
            return rows
        if inputs is None or labels is None:
            raise ValueError("pass inputs and labels, or pairs")
        return pair_rows(
            as_rows(inputs, field="inputs", error=error),
            as_rows(labels, field="labels", error=error),
            error=error,
        )

    def _run_binary(
        self,
        name: str,
        app_name: str,
        data: Any,
        progress: Callable[[int, int], None] | None,
    ) -> list[list[float]]:
        path = "/public/run_sgt_model"
        matrix = float32_matrix(data, field="data", error=RunWeightsNetException)
        fields = self._auth(name=name, app_name=app_name, response_format="binary")
        outputs: list[list[float]] = []
        for start, stop in chunk_bounds(matrix.rows, self.chunk_rows):
            encoded = run_body(fields, matrix, start, stop)
            result = self._call_chunk(path, encoded, rows_done=start, is_idempotent=True)
            outputs.extend(rows_of_answer(result, rows=stop - start, path=path))
            if progress is not None:
                progress(stop, matrix.rows)
        return outputs

    def _upload_binary(
        self,
        name: str,
        app_name: str,
        inputs: Any,
        labels: Any,
        pairs: Any,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        inputs_matrix, labels_matrix = train_matrices(
            inputs, labels, pairs, error=UploadDataException
        )
        fields = self._auth(name=name, app_name=app_name)
        bodies = [
            (start, stop, upload_body(fields, inputs_matrix, labels_matrix, start, stop))
            for start, stop in chunk_bounds(inputs_matrix.rows, self.chunk_rows)
        ]
        path = "/public/upload_sgt_model_train_data"
        for start, stop, encoded in bodies:
            self._call_chunk(path, encoded, rows_done=start, is_idempotent=False)
            if progress is not None:
                progress(stop, inputs_matrix.rows)

    def _uses_binary(self) -> bool:
        """Whether big arrays go binary: as asked, else as the server advertised."""
        if self.binary is not None:
            return self.binary
        if self._server_has_binary is None:
            try:  # no reply seen yet: ask the cheapest question there is, once
                self._send("/public/list_model_type", b"{}", is_idempotent=True)
            except (ApiError, UnexpectedResponse):
                pass  # a 400's header was read all the same; no valid reply: JSON this time
        return bool(self._server_has_binary)

    def _call(self, path: str, body: dict[str, Any], *, is_idempotent: bool) -> Any:
        encoded = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return self._send(path, encoded, is_idempotent=is_idempotent)

    def _call_chunk(self, path: str, encoded: bytes, *, rows_done: int, is_idempotent: bool) -> Any:
        try:
            return self._send(path, encoded, is_idempotent=is_idempotent)
        except SgtClientError as exc:
            exc.rows_done = rows_done
            raise

    def _send(self, path: str, encoded: bytes, *, is_idempotent: bool) -> Any:
        attempt = 0
        while True:
            try:
                return self._send_once(path, encoded)
            except (ConnectFailed, ConnectionLost) as exc:
                # A refused connection never reached the server, so even a create may repeat;
                # a lost one may have been acted on, so only idempotent calls repeat then.
                is_safe = is_idempotent or isinstance(exc, ConnectFailed)
                if not is_safe or attempt >= self.retries:
                    raise
            self._sleep(min(self.backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS))
            attempt += 1

    def _send_once(self, path: str, encoded: bytes) -> Any:
        url = self.api_url + path
        try:
            status, headers, content = self._transport.post(
                url, encoded, _REQUEST_HEADERS, self.timeout
            )
        except TransportError:
            raise
        except OSError as exc:  # a custom transport that let a socket error through
            raise ConnectionLost(f"connection lost talking to {url}: {exc}") from exc
        if status not in (200, 400):
            raise UnexpectedResponse(
                f"{url} answered status {status}: {content[:200]!r}",
                status_code=status,
            )
        try:
            result = json.loads(content.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise UnexpectedResponse(
                f"{url} answered status {status} with a body that is not JSON: {content[:200]!r}",
                status_code=status,
            ) from None
        if self._server_has_binary is None:
            extensions = (_header(headers, EXTENSIONS_HEADER) or "").lower().split(",")
            self._server_has_binary = BINARY_EXTENSION in (name.strip() for name in extensions)
        if status == 400:
            raise api_error_from_body(result, _header(headers, "X-Request-ID"))
        return result


def expect_answer(result: Any, kind: type, path: str) -> Any:
    if not isinstance(result, kind):
        raise UnexpectedResponse(
            f"{path} answered {type(result).__name__}, expected a JSON {kind.__name__}",
            status_code=200,
        )
    return result


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
