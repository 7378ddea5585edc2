"""Reading request bodies: size limit, fast strict decoding, errors that name the field.

Whatever the bytes, decoding ends in a request object or an SgtError: invalid UTF-8, nesting
too deep for the decoder, and strings that break the rules of `sgt.domain.text` are
InvalidRequest (docs/input_rules.md). `client_data` is checked by the services that store it.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from sgt.domain.client_data import MAX_CLIENT_DATA_DEPTH
from sgt.domain.text import check_text_field, safe_for_message
from sgt.errors import InvalidRequest, InvalidSamples

T = TypeVar("T", bound=msgspec.Struct)

SAMPLE_FIELDS = ("data", "train_data", "candidates")
PAUSE_GC_BYTES = 1 << 20
_LOCATION = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
SURROGATE_PROBLEM = "holds a lone UTF-16 surrogate; strings must be valid Unicode"
TOO_DEEP = (
    "request body nests arrays and objects deeper than this server decodes; "
    f"client_data may nest at most {MAX_CLIENT_DATA_DEPTH} levels"
)


async def read_body(request: Request, *, max_bytes: int) -> bytearray:
    """The whole body, refusing anything over `max_bytes` before reading it all.

    Chunks are copied once, into a buffer sized from Content-Length when there is one: a body
    never exists twice in memory (chunks plus their join).
    """
    declared = request.headers.get("content-length")
    expected = int(declared) if declared is not None and declared.isdigit() else None
    if expected is not None and expected > max_bytes:
        raise InvalidRequest(f"request body is {expected:,} bytes; the limit is {max_bytes:,}")
    body = bytearray(expected or 0)
    size = 0
    async for chunk in request.stream():
        end = size + len(chunk)
        if end > max_bytes:
            raise InvalidRequest(f"request body exceeds the limit of {max_bytes:,} bytes")
        if end <= len(body):
            body[size:end] = chunk
        else:
            del body[size:]
            body += chunk
        size = end
    del body[size:]
    return body


def decode_body(body: bytes | bytearray, request_type: type[T], *, max_text_chars: int) -> T:
    """The body as `request_type`; raises InvalidRequest, or InvalidSamples for `data` cells.

    An empty body reads as `{}`: clients of list_model_type send nothing.
    """
    if not body or body.isspace():  # not strip(): that would copy a 50 MB body
        body = b"{}"
    try:
        with _collector_paused(len(body) >= PAUSE_GC_BYTES):
            decoded = msgspec.json.decode(body, type=request_type)
    except msgspec.ValidationError as error:
        raise _from_validation_error(error) from None
    except RecursionError:
        raise InvalidRequest(TOO_DEEP) from None
    except (msgspec.DecodeError, UnicodeError):
        decoded = _decode_with_constants(body, request_type)
    _check_text_fields(decoded, max_text_chars)
    return decoded


def decode_loosely(body: bytes | bytearray, request_type: type[T]) -> T | None:
    """The body as `request_type`, or None when it is not one, whatever the bytes."""
    try:
        return msgspec.json.decode(body, type=request_type)
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        return None


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while any large body is being decoded.

    Decoding 20,000 rows creates 20,000 lists, which triggers dozens of collections that each
    walk the young lists and, now and then, the whole heap: a third of the decoding time.
    Nothing decoded is garbage yet, so those collections find nothing. Counted, so that
    concurrent decodes re-enable collection only when the last one ends.
    """

    def __init__(self) -> None:
        self._active = 0
        self._restore = False
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, pause: bool) -> Iterator[None]:
        if not pause:
            yield
            return
        with self._lock:
            self._active += 1
            if self._active == 1:
                self._restore = gc.isenabled()
                gc.disable()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0 and self._restore:
                    gc.enable()


_collector_paused = _CollectorPause()


def _decode_with_constants(body: bytes | bytearray, request_type: type[T]) -> T:
    # Standard JSON has no NaN or Infinity, but Python clients send them by default; parse them
    # on this slow path so that the error can name the cell instead of "malformed JSON".
    # Decoded here, strictly: json.loads would also take UTF-16 and UTF-8-encoded surrogates.
    try:
        text = bytes(body).decode("utf-8-sig")  # a leading byte order mark is tolerated
    except UnicodeDecodeError as error:
        raise InvalidRequest(
            "request body is not valid JSON text: not valid UTF-8 "
            f"(byte 0x{body[error.start]:02x} at offset {error.start})"
        ) from None
    try:
        value: Any = json.loads(text)
    except RecursionError:
        raise InvalidRequest(TOO_DEEP) from None
    except ValueError:
        raise InvalidRequest("request body is not valid JSON") from None
    try:
        return msgspec.convert(value, type=request_type)
    except msgspec.ValidationError as error:
        raise _from_validation_error(error) from None
    except RecursionError:
        raise InvalidRequest(TOO_DEEP) from None
    except UnicodeEncodeError:
        # msgspec fails so while quoting a refused string (an enum value) in its message.
        raise InvalidRequest(f"a string in the request body {SURROGATE_PROBLEM}") from None


def _from_validation_error(error: msgspec.ValidationError) -> InvalidRequest | InvalidSamples:
    match = _LOCATION.match(safe_for_message(str(error)))
    what = (match.group("what") if match else str(error)).replace("`", "")
    field = ((match.group("path") or "") if match else "").lstrip(".")
    missing = re.match(r"Object missing required field (\w+)", what)
    if missing:
        name = f"{field}.{missing.group(1)}" if field else missing.group(1)
        # Inside `data` or `train_data` (the binary extension's objects) it is bad samples.
        if _top_field(field) in SAMPLE_FIELDS:
            return InvalidSamples(f"{name} is required")
        return InvalidRequest(f"{name} is required")
    if not field:
        if what.startswith("Expected object"):
            return InvalidRequest("request body must be a JSON object")
        return InvalidRequest(_lower_first(what))
    if _top_field(field) in SAMPLE_FIELDS:
        return InvalidSamples(f"{field}: {_lower_first(what)}")
    return InvalidRequest(f"{field}: {_lower_first(what)}")


def _top_field(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _check_text_fields(decoded: msgspec.Struct, max_chars: int) -> None:
    text_fields = _text_fields(type(decoded))
    for field in decoded.__struct_fields__:
        value = getattr(decoded, field)
        if not isinstance(value, str):
            continue
        if field in text_fields:
            check_text_field(field, value, max_chars=max_chars)
        elif len(value) > max_chars:
            # Loosely typed (credentials): their consumer judges their characters.
            raise InvalidRequest(f"{field} is {len(value)} characters; the limit is {max_chars}")


@cache
def _text_fields(request_type: type[msgspec.Struct]) -> frozenset[str]:
    """The fields declared as strings; an `Any` field that holds one is not among them."""
    return frozenset(
        field.name
        for field in msgspec.structs.fields(request_type)
        if field.type in (str, str | None)
    )
