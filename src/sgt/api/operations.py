"""What one operation of the contract is: its path, request and response types, the exception
name its failures carry, and how it is documented. Plain data, read by `sgt.api.pipeline` (to
serve it) and `sgt.api.openapi` (to describe it). Must not import sgt.training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

Body = TypeVar("Body", bound=msgspec.Struct)


@dataclass(frozen=True)
class Operation(Generic[Body]):
    """One endpoint of the contract and the exception name its failures carry."""

    path: str
    request_type: type[Body]
    exception: str | None
    summary: str
    # The type of the answer, for the OpenAPI document: None answers `null`.
    response_type: Any = None
    # Clone reports a missing source model under its own name, not FindModelException.
    owns_not_found: bool = False
    # Extra paragraph for the OpenAPI page (the binary extension on run and upload).
    notes: str = ""
    # Bodies up to this size are served on the event loop, skipping two thread switches that
    # cost more than the work on a busy machine. Only for operations that never wait on a lock
    # (reads: SQLite WAL readers never block) and whose small requests take well under 1 ms, and
    # only for credentials verified lately (see `sgt.services.users.authenticate_if_remembered`).
    inline_max_bytes: int = 0
