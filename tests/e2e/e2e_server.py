"""A real `sgt serve` process on a free loopback port, and the helpers that talk to it over HTTP.

The server gets a clean environment (no SGT_* variable of the caller), a data directory of its
own and small trainer timings. Readiness is a condition polled with a deadline, never a sleep.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

START_DEADLINE_SECONDS = 90.0
STOP_DEADLINE_SECONDS = 30.0
_users = itertools.count(1)
FAST_TIMINGS = {
    "SGT_CHECKPOINT_SECONDS": "0.5",
    "SGT_HEARTBEAT_SECONDS": "0.5",
    "SGT_POLL_SECONDS": "0.2",
    "SGT_LEASE_SECONDS": "10",
    "SGT_TORCH_THREADS": "1",
    # A bound on any one run, so that a wait for "converged" is bounded too.
    "SGT_MAX_TRAIN_SECONDS": "60",
    "SGT_LOG_LEVEL": "info",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(**variables: str) -> dict[str, str]:
    """This process's environment without any SGT_* / sgt_* variable, plus `variables`."""
    env = {name: value for name, value in os.environ.items() if not name.lower().startswith("sgt")}
    env.update(variables)
    return env


@dataclass
class Reply:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id")


class SgtServer:
    """`python -m sgt serve` on `data_dir`; `start()` returns once /healthz answers.

    With `system_key=None` the server generates its own into the data directory, and
    `system_key` is read from there once it has started.
    """

    def __init__(self, data_dir: Path, *, system_key: str | None, **extra_env: str) -> None:
        self.data_dir = data_dir
        self.system_key = system_key
        self.extra_env = extra_env
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.outlived_serve: list[int] = []
        self.port = 0
        self.http = httpx.Client(timeout=60.0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = clean_environment(SGT_DATA_DIR=str(self.data_dir), **FAST_TIMINGS, **self.extra_env)
        if self.system_key is not None:
            env["SGT_SYSTEM_KEY"] = self.system_key
        for attempt in range(3):
            # The free port may be taken by another process before the server binds it.
            self.port = free_port()
            log_start = len(self.log)
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "sgt", "serve", "--port", str(self.port)],
                    env=env,
                    cwd=self.data_dir.parent,  # no ./sgt.env or ./.env of the repository
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                self._wait_until_healthy()
                break
            except RuntimeError:
                if attempt == 2 or "address already in use" not in self.log[log_start:]:
                    raise
        if self.system_key is None:
            self.system_key = self.generated_key_path.read_text().strip()

    @property
    def generated_key_path(self) -> Path:
        return self.data_dir / "system_key"

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code, self.process = self.process.returncode, None
                raise RuntimeError(f"sgt serve exited with {code}:\n{self.log}")
            try:
                if self.http.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling interval, not synchronisation: the loop checks a condition
        self.stop()
        raise RuntimeError(f"sgt serve did not answer /healthz in time:\n{self.log}")

    def stop(self) -> int | None:
        """SIGTERM, wait for `sgt serve` and then for the processes it started; returns the exit
        status. `outlived_serve` lists the children still running when `sgt serve` had exited."""
        if self.process is None:
            return None
        children = self.child_pids()
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise RuntimeError(f"sgt serve ignored SIGTERM:\n{self.log}") from None
        self.outlived_serve = [pid for pid in children if is_running(pid)]
        deadline = time.monotonic() + STOP_DEADLINE_SECONDS
        while any(is_running(pid) for pid in children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"children of sgt serve ignored SIGTERM:\n{self.log}")
            time.sleep(0.05)  # polling interval of a condition with a deadline
        return process.returncode

    def child_pids(self) -> list[int]:
        """Processes `sgt serve` started (its embedded trainer), from /proc."""
        if self.process is None:
            return []
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the process ended while we looked
            if int(fields[1]) == self.process.pid:
                children.append(int(stat.parent.name))
        return children

    def api_peak_memory_bytes(self) -> int:
        """The peak resident memory of the API process (`sgt serve` itself, with one API
        worker), from /proc: what a request that allocated much would have raised."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")

    def close(self) -> None:
        self.stop()
        self.http.close()

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def post(self, path: str, body: Any = None, *, content: bytes | None = None) -> Reply:
        """POST `body` as JSON (or raw `content`) to /sgt + `path`."""
        if content is None:
            content = json.dumps(body).encode()  # Python's json: NaN and Infinity as bare tokens
        response = self.http.post(
            self.base_url + "/sgt" + path,
            content=content,
            headers={"Content-Type": "application/json"},
        )
        return Reply(response.status_code, _json_or_text(response), response.headers)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(self.base_url + path)


def is_running(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class Session:
    """One user's view of the server: adds its credentials to every body."""

    def __init__(self, server: SgtServer, secret_id: str, secret_key: str) -> None:
        self.server = server
        self.secret_id = secret_id
        self.secret_key = secret_key

    @property
    def credentials(self) -> dict[str, str]:
        return {"secret_id": self.secret_id, "secret_key": self.secret_key}

    def post(self, path: str, **fields: Any) -> Reply:
        return self.server.post(path, {**self.credentials, **fields})

    def ok(self, path: str, **fields: Any) -> Any:
        """POST and require a 200; returns the body."""
        reply = self.post(path, **fields)
        assert reply.status == 200, (path, reply.status, reply.body)
        return reply.body

    def create(self, name: str, *, app_name: str = "app", **fields: Any) -> None:
        body = {
            "model_type": "std",
            "in_size": 3,
            "out_size": 2,
            "client_data": None,
            "is_public": False,
            **fields,
        }
        self.ok("/public/create_sgt_model", name=name, app_name=app_name, **body)

    def run(self, name: str, data: Any, *, app_name: str = "app") -> Any:
        return self.ok("/public/run_sgt_model", name=name, app_name=app_name, data=data)

    def upload(self, name: str, train_data: Any, *, app_name: str = "app") -> None:
        self.ok(
            "/public/upload_sgt_model_train_data",
            name=name,
            app_name=app_name,
            train_data=train_data,
        )

    def status(self, name: str, *, app_name: str = "app") -> dict[str, Any]:
        return self.ok("/public/get_sgt_model_train_status", name=name, app_name=app_name)

    def my_models(self) -> list[dict[str, Any]]:
        return self.ok("/public/read_my_sgt_model")

    def delete_all_models(self) -> None:
        """Delete every model of this user; nothing to do when its key no longer works."""
        reply = self.post("/public/read_my_sgt_model")
        if reply.status != 200:
            return
        for model in reply.body:
            self.ok("/public/delete_sgt_model", name=model["name"], app_name=model["app_name"])

    def wait_for_state(
        self, name: str, state: str, *, app_name: str = "app", deadline_seconds: float = 120.0
    ) -> dict[str, Any]:
        """Poll the training status until `state`, failing after the deadline."""
        return self.wait_for_status(
            name, lambda status: status["state"] == state, app_name, deadline_seconds
        )

    def wait_for_weights_trained_on(
        self,
        name: str,
        sample_count: int,
        *,
        app_name: str = "app",
        deadline_seconds: float = 120.0,
    ) -> dict[str, Any]:
        """Poll until the served weights were trained on `sample_count` samples (the first
        checkpoint of that run; training may go on improving it)."""
        return self.wait_for_status(
            name,
            lambda status: status["trained_sample_count"] == sample_count,
            app_name,
            deadline_seconds,
        )

    def wait_for_status(
        self,
        name: str,
        condition: Callable[[dict[str, Any]], bool],
        app_name: str,
        deadline_seconds: float,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + deadline_seconds
        status = self.status(name, app_name=app_name)
        while not condition(status):
            assert time.monotonic() < deadline, f"{name} still {status} after {deadline_seconds}s"
            time.sleep(0.2)  # polling interval of a condition with a deadline
            status = self.status(name, app_name=app_name)
        return status


def register_user(server: SgtServer, prefix: str = "user", **fields: str) -> Session:
    """A new user created over HTTP with the system key of `server`."""
    secret_id, secret_key = f"{prefix}-{next(_users)}", f"key-{next(_users)}"
    reply = server.post(
        "/private/update_auth_token",
        {"key": server.system_key, "secret_id": secret_id, "secret_key": secret_key, **fields},
    )
    assert (reply.status, reply.body) == (200, None), reply.body
    return Session(server, secret_id, secret_key)


def assert_error(reply: Reply, exception: str, *fragments: str) -> str:
    """The contract's failure: 400, exactly {"exception", "message"}, a request id; returns the
    message after checking it names every fragment (case-insensitive)."""
    assert reply.status == 400, (reply.status, reply.body)
    assert isinstance(reply.body, dict) and set(reply.body) == {"exception", "message"}, reply.body
    assert reply.body["exception"] == exception, reply.body
    assert isinstance(reply.body["message"], str) and reply.body["message"], reply.body
    assert reply.request_id, "every answer carries X-Request-ID"
    message = reply.body["message"]
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    return message
