"""Transports: the one object that moves bytes to the server, so tests can pass a fake one.

Standard library only (`urllib.request`); it knows HTTP but nothing of the SGT contract.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from ._errors import ConnectFailed, ConnectionLost, RequestTimedOut, UnexpectedResponse


class BaseTransport:
    """What the client needs from a transport; any object with this `post` method will do.

    `post` sends one POST and returns `(status, headers, body)` for whatever status the server
    answered with (400 included). It raises a `TransportError` subclass when no reply came back:
    `ConnectFailed` only when nothing can have reached the server, because the client retries
    even non-idempotent calls on it.
    """

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_seconds: float,
    ) -> tuple[int, Mapping[str, str], bytes]:
        raise NotImplementedError


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without its body; the API never
    # redirects, so a redirect surfaces as an unexpected status instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibTransport(BaseTransport):
    """The default transport: one `urllib.request` connection per request, no keep-alive.

    Honours the usual proxy environment variables; `ssl_context` verifies HTTPS servers.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=ssl_context), _RefuseRedirects()
        )

    def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_seconds: float,
    ) -> tuple[int, Mapping[str, str], bytes]:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with self._opener.open(request, timeout=timeout_seconds) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as exc:
            # Any status but 2xx lands here, the contract's 400 included: it is a reply.
            try:
                return exc.code, dict(exc.headers.items()), exc.read()
            except (OSError, http.client.HTTPException) as read_exc:
                raise _failure_from(read_exc, url) from read_exc
            finally:
                exc.close()
        except urllib.error.URLError as exc:
            # urllib wraps what fails while connecting and sending the request.
            reason = exc.reason if isinstance(exc.reason, BaseException) else exc
            raise _failure_from(reason, url, is_sending=True) from exc
        except (OSError, http.client.HTTPException) as exc:
            # Raised while reading the reply: the request was sent.
            raise _failure_from(exc, url) from exc


def _failure_from(
    exc: BaseException, url: str, *, is_sending: bool = False
) -> ConnectFailed | ConnectionLost | RequestTimedOut | UnexpectedResponse:
    detail = f"{url} ({type(exc).__name__}: {exc})"
    if isinstance(exc, socket.timeout):  # an alias of TimeoutError from 3.10 on
        return RequestTimedOut("no reply within the timeout from " + detail)
    if is_sending and isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return ConnectFailed("could not connect to " + detail)
    if isinstance(exc, (OSError, http.client.IncompleteRead, http.client.RemoteDisconnected)):
        return ConnectionLost("connection lost talking to " + detail)
    return UnexpectedResponse("not a valid HTTP reply from " + detail)
