"""What may not run on the API's event loop: a checkpoint load, a wait for a pooled connection.

The API serves some small requests on its event loop (`sgt.api.pipeline`) inside
`on_event_loop()`. A use case about to do something that can block calls `refuse_blocking` (or
`refuse_connection_wait`) first: on the loop that raises `NeedsThread`, and the API serves the
whole request again in its thread pool, so such steps must come before any write. Off the loop
both are no-ops. Only the standard library and the service context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sgt.services.context import ServiceContext

_ON_EVENT_LOOP: ContextVar[bool] = ContextVar("sgt_on_event_loop", default=False)


class NeedsThread(Exception):
    """The request would block the event loop here: serve it in a thread instead."""


@contextmanager
def on_event_loop() -> Iterator[None]:
    """Marks the code inside as running on the event loop (it must not block)."""
    token = _ON_EVENT_LOOP.set(True)
    try:
        yield
    finally:
        _ON_EVENT_LOOP.reset(token)


def is_on_event_loop() -> bool:
    return _ON_EVENT_LOOP.get()


def refuse_blocking(what: str) -> None:
    """Raises NeedsThread on the event loop: `what` (a load, a computation) may take long."""
    if _ON_EVENT_LOOP.get():
        raise NeedsThread(what)


def refuse_connection_wait(ctx: ServiceContext) -> None:
    """Raises NeedsThread on the event loop when no pooled connection is idle: a read would
    wait for one (or connect)."""
    if _ON_EVENT_LOOP.get() and not ctx.db.has_idle_connection():
        raise NeedsThread("no idle database connection")
