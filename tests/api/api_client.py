"""What the API tests share besides fixtures: Starlette's TestClient and the `post` helper type."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import httpx
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x prefers `httpx2` for its TestClient and warns once, at import, when it finds
    # only `httpx` (a dev dependency of this project). The client works the same with either.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

Post = Callable[..., httpx.Response]

__all__ = ["Post", "TestClient"]
