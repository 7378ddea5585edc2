"""A fake transport for the client, in the spirit of httpx's MockTransport: a handler function
answers each request, and every request is recorded with its decoded JSON body.

Helpers reach the tests as fixtures, not imports, so no module name can clash with another
directory's conftest."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from sgt.client import Client


@dataclass
class SentRequest:
    url: str
    path: str
    body: Any
    raw: bytes
    headers: dict[str, str]
    timeout_seconds: float


Reply = tuple[int, Mapping[str, str], bytes]
Handler = Callable[[SentRequest], Reply]


def json_reply(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return status, dict(headers or {}), json.dumps(value).encode()


def error_reply(exception: str, message: str = "boom", request_id: str | None = None) -> Reply:
    headers = {"X-Request-ID": request_id} if request_id else {}
    return json_reply({"exception": exception, "message": message}, 400, headers)


class FakeTransport:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[SentRequest] = []

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_seconds: float
    ) -> Reply:
        path = "/" + url.split("/sgt/", 1)[1]
        request = SentRequest(url, path, json.loads(body), body, dict(headers), timeout_seconds)
        self.requests.append(request)
        return self.handler(request)


@pytest.fixture(name="json_reply")
def json_reply_fixture() -> Callable[..., Reply]:
    return json_reply


@pytest.fixture(name="error_reply")
def error_reply_fixture() -> Callable[..., Reply]:
    return error_reply


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Callable[..., tuple[Client, FakeTransport]]:
    """make_client(handler, **client_kwargs) -> (client, transport); sleeps are recorded.

    The client speaks plain JSON unless a test passes `binary`: most tests count requests, and
    detecting the extension may add one (see test_client_binary.py)."""

    def make(handler: Handler, **kwargs: Any) -> tuple[Client, FakeTransport]:
        transport = FakeTransport(handler)
        kwargs.setdefault("sleep", sleeps)
        kwargs.setdefault("binary", False)
        client = Client("http://sgt.test:6006", "alice", "s3cret", transport=transport, **kwargs)
        return client, transport

    return make
