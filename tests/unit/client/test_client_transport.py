"""The default urllib transport against a tiny loopback HTTP server that answers canned replies."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

import sgt.client as sc


class CannedHandler(http.server.BaseHTTPRequestHandler):
    # path -> (status, headers, body); "/sgt/hang" sleeps, "/sgt/drop" closes without a reply.
    replies: dict = {}
    received: list = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, self.headers["Content-Type"], self.rfile.read(length)))
        if self.path.endswith("/hang"):
            time.sleep(0.5)
            return
        if self.path.endswith("/drop"):
            self.close_connection = True
            return
        status, headers, body = self.replies[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    CannedHandler.replies = {}
    CannedHandler.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CannedHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def url_of(httpd):
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def test_a_200_reply_is_returned_as_json(server):
    body = json.dumps([{"name": "arm"}]).encode()
    CannedHandler.replies["/sgt/public/read_my_sgt_model"] = (200, {}, body)

    client = sc.Client(url_of(server), "alice", "s3cret")

    assert client.list_my_models() == [{"name": "arm"}]
    ((path, content_type, sent),) = CannedHandler.received
    assert content_type == "application/json"
    assert json.loads(sent) == {"secret_id": "alice", "secret_key": "s3cret"}


def test_a_400_reply_becomes_its_exception_with_the_request_id(server):
    body = json.dumps({"exception": "FindModelException", "message": "no model 'arm'"}).encode()
    CannedHandler.replies["/sgt/public/delete_sgt_model"] = (400, {"X-Request-ID": "r-1"}, body)

    with pytest.raises(sc.FindModelException) as caught:
        sc.Client(url_of(server), "alice", "s3cret").delete_model("arm", "rig")

    assert caught.value.message == "no model 'arm'"
    assert caught.value.request_id == "r-1"


def test_a_redirect_is_not_followed(server):
    headers = {"Location": "/elsewhere"}
    CannedHandler.replies["/sgt/public/read_my_sgt_model"] = (302, headers, b"")

    with pytest.raises(sc.UnexpectedResponse) as caught:
        sc.Client(url_of(server), "alice", "s3cret").list_my_models()

    assert caught.value.status_code == 302


def test_a_refused_connection_is_connect_failed():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens once it is closed
    client = sc.Client(f"http://127.0.0.1:{port}", "a", "b", retries=0)

    with pytest.raises(sc.ConnectFailed):
        client.list_my_models()


def test_no_reply_in_time_is_request_timed_out(server):
    transport = sc.UrllibTransport()

    with pytest.raises(sc.RequestTimedOut):
        transport.post(url_of(server) + "/sgt/hang", b"{}", {}, 0.1)


def test_a_dropped_connection_is_connection_lost(server):
    transport = sc.UrllibTransport()

    with pytest.raises(sc.ConnectionLost):
        transport.post(url_of(server) + "/sgt/drop", b"{}", {}, 5.0)
