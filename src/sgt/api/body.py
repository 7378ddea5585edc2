"""Reading request bodies: size limit, fast strict decoding, errors that name the field."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from sgt.errors import InvalidRequest, InvalidSamples

T = TypeVar("T", bound=msgspec.Struct)

SAMPLE_FIELDS = ("data", "train_data")
_LOCATION = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")


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
        decoded = msgspec.json.decode(body, type=request_type)
    except msgspec.ValidationError as error:
        raise _from_validation_error(error) from None
    except msgspec.DecodeError:
        decoded = _decode_with_constants(body, request_type)
    _check_text_lengths(decoded, max_text_chars)
    return decoded


def _decode_with_constants(body: bytes | bytearray, request_type: type[T]) -> T:
    # Standard JSON has no NaN or Infinity, but Python clients send them by default; parse them
    # on this slow path so that the error can name the cell instead of "malformed JSON".
    try:
        value: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("request body is not valid JSON") from None
    try:
        return msgspec.convert(value, type=request_type)
    except msgspec.ValidationError as error:
        raise _from_validation_error(error) from None


def _from_validation_error(error: msgspec.ValidationError) -> InvalidRequest | InvalidSamples:
    match = _LOCATION.match(str(error))
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


def _check_text_lengths(decoded: msgspec.Struct, max_chars: int) -> None:
    for field in decoded.__struct_fields__:
        value = getattr(decoded, field)
        if isinstance(value, str) and len(value) > max_chars:
            raise InvalidRequest(f"{field} is {len(value)} characters; the limit is {max_chars}")
