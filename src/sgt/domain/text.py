"""Which characters the string fields of a request may hold (docs/input_rules.md).

Two kinds of field. Identifiers (`secret_id`, `name`, `app_name`, `new_name`,
`author_unique_id`) are stored in bounded text columns, compared, shown in pages and logs: no
control characters at all. Other text (`secret_key`, `doc`, `end_time`, `model_type`, ...) may
hold any character but NUL. Neither may hold a lone UTF-16 surrogate (`"\\ud800"` in JSON), which
is not a character: it cannot be encoded as UTF-8, so it could not be hashed, stored or answered.
The rules are the same on every backend, so that SQLite accepts nothing PostgreSQL would refuse
(its text columns cannot hold NUL). Imports only sgt.errors and the standard library.
"""

from __future__ import annotations

import re

from sgt.errors import InvalidRequest

IDENTIFIER_FIELDS = frozenset({"secret_id", "name", "app_name", "new_name", "author_unique_id"})
# The width of the columns identifiers are stored in (String(512) in sgt.storage.tables).
IDENTIFIER_COLUMN_CHARS = 512

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Unicode category Cc: C0 controls (NUL, tab, newline, ...), DEL and the C1 controls.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NUL = re.compile("\x00")


def check_text_field(field: str, value: str, *, max_chars: int) -> None:
    """Refuse `value` for `field` by the rules above; raises InvalidRequest naming the field."""
    limit = identifier_limit(max_chars) if field in IDENTIFIER_FIELDS else max_chars
    if len(value) > limit:
        raise InvalidRequest(f"{field} is {len(value)} characters; the limit is {limit}")
    problem = text_problem(value, identifier=field in IDENTIFIER_FIELDS)
    if problem is not None:
        raise InvalidRequest(f"{field} {problem}")


def identifier_limit(max_chars: int) -> int:
    """The longest identifier: the configured bound, never wider than the columns."""
    return min(max_chars, IDENTIFIER_COLUMN_CHARS)


def is_valid_identifier(value: str) -> bool:
    """True when `value` could be a stored secret_id, name or app_name (length aside)."""
    return text_problem(value, identifier=True) is None


def is_encodable(value: str) -> bool:
    """True when `value` holds no lone surrogate, so UTF-8 (hashing, storage, JSON) can take it."""
    return value.isascii() or _LONE_SURROGATE.search(value) is None


def text_problem(value: str, *, identifier: bool) -> str | None:
    """What is wrong with `value` ("holds ... at position 3"), or None."""
    if value.isascii() and value.isprintable():
        return None  # the common case, decided without a regular expression
    surrogate = surrogate_problem(value)
    if surrogate is not None:
        return surrogate
    forbidden = (_CONTROL if identifier else _NUL).search(value)
    if forbidden is None:
        return None
    what = "control characters" if identifier else "NUL"
    return (
        f"holds {_escaped(forbidden.group())} at position {forbidden.start()}; "
        f"{'identifiers' if identifier else 'text'} may not hold {what}"
    )


def surrogate_problem(value: str) -> str | None:
    """Where `value` holds a lone surrogate ("holds ... at position 3"), or None."""
    surrogate = None if value.isascii() else _LONE_SURROGATE.search(value)
    if surrogate is None:
        return None
    return (
        f"holds a lone UTF-16 surrogate ({_escaped(surrogate.group())}) at position "
        f"{surrogate.start()}; strings must be valid Unicode"
    )


def safe_for_message(text: str) -> str:
    """`text` with lone surrogates escaped, so a message quoting a client's string encodes."""
    if is_encodable(text):
        return text
    return _LONE_SURROGATE.sub(lambda match: _escaped(match.group()), text)


def _escaped(character: str) -> str:
    return f"\\u{ord(character):04x}"
