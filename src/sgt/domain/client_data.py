"""What `client_data` may be: any standard JSON value within a nesting depth (docs/input_rules.md).

It is kept as compact JSON text and answered as it came, so every part of it must survive that:
strings (keys and values) valid Unicode, numbers finite (NaN and Infinity are not JSON), integers
within 64 bits, nesting at most MAX_CLIENT_DATA_DEPTH levels. NUL inside its strings is allowed:
the stored text holds the escape `\\u0000`, never the character, on either backend.
Imports only sgt.errors, sgt.domain.text and the standard library.
"""

from __future__ import annotations

import math
from typing import Any

from sgt.domain.text import safe_for_message, surrogate_problem
from sgt.errors import InvalidRequest

MAX_CLIENT_DATA_DEPTH = 64
# What JSON encoders and decoders on both ends agree on: signed or unsigned 64-bit integers.
SMALLEST_INTEGER = -(2**63)
LARGEST_INTEGER = 2**64 - 1


def check_client_data(value: Any, *, field: str = "client_data") -> None:
    """Refuse a `client_data` that could not be stored and answered as it came; raises
    InvalidRequest naming the place (`client_data.settings[2]`)."""
    _check(value, field, depth=0)


def _check(value: Any, path: str, *, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth == MAX_CLIENT_DATA_DEPTH:
            raise InvalidRequest(
                f"client_data nests deeper than {MAX_CLIENT_DATA_DEPTH} levels of arrays and "
                f"objects; the limit is {MAX_CLIENT_DATA_DEPTH}"
            )
        if isinstance(value, dict):
            for key, item in value.items():
                label = _key_label(key)
                _check_string(key, f"{path} key '{label}'")
                _check(item, f"{path}.{label}", depth=depth + 1)
        else:
            for index, item in enumerate(value):
                _check(item, f"{path}[{index}]", depth=depth + 1)
    elif isinstance(value, str):
        _check_string(value, path)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not SMALLEST_INTEGER <= value <= LARGEST_INTEGER:
            raise InvalidRequest(
                f"{path} is an integer of {value.bit_length()} bits; client_data integers "
                "must fit in 64 bits (use a string or a float for larger numbers)"
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            raise InvalidRequest(f"{path} is {shown}; NaN and Infinity are not JSON numbers")


def _check_string(value: str, path: str) -> None:
    # NUL and other controls are allowed here: the stored JSON text escapes them.
    problem = surrogate_problem(value)
    if problem is not None:
        raise InvalidRequest(f"{path} {problem}")


def _key_label(key: str) -> str:
    return safe_for_message(key if len(key) <= 40 else key[:40] + "...")
