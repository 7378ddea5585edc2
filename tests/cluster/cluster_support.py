"""Real `sgt serve` and `sgt worker` processes around one database, driven over HTTP.

Used by the cluster tests and by `bench/cluster.py`. Every process gets a clean environment (no
SGT_* variable of the caller), the database URL and short trainer timings; readiness and
training are conditions polled with deadlines, never fixed sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

SYSTEM_KEY = "cluster-system-key"
SECRET_ID, SECRET_KEY = "cluster-user", "cluster-key"
TIMINGS = {
    "SGT_LEASE_SECONDS": "3",
    "SGT_HEARTBEAT_SECONDS": "0.5",
    "SGT_CHECKPOINT_SECONDS": "0.5",
    "SGT_POLL_SECONDS": "0.5",
    "SGT_MAX_TRAIN_SECONDS": "60",
    "SGT_TORCH_THREADS": "1",
    "SGT_LOG_LEVEL": "info",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], *, seconds: float, what: str) -> Any:
    """Poll `condition` until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)  # polling interval of a condition, not a synchronisation


def target_function(index: int, inputs: np.ndarray) -> np.ndarray:
    """Model `index` learns y = a*x0 - b*x1 + c, different for every model."""
    a, b, c = 1.0 + index % 5 * 0.25, 0.5 + index % 3 * 0.5, index % 4 * 0.1
    return (a * inputs[:, :1] - b * inputs[:, 1:2] + c).astype(np.float32)


def training_pairs(index: int, rows: int, seed: int = 0) -> list[list[list[float]]]:
    inputs = np.random.default_rng(seed + index).uniform(-1, 1, (rows, 2)).astype(np.float32)
    targets = target_function(index, inputs)
    return [[x.tolist(), y.tolist()] for x, y in zip(inputs, targets, strict=True)]


@dataclass
class Cluster:
    """API servers and trainer workers on `database_url`, with logs under `root`."""

    root: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    servers: list[tuple[subprocess.Popen[bytes], str]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=60.0)

    def environment(self, name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("sgt")}
        env.update(TIMINGS)
        env.update(
            SGT_DATABASE_URL=self.database_url,
            SGT_SYSTEM_KEY=SYSTEM_KEY,
            SGT_DATA_DIR=str(self.root / name),
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        with (self.root / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "sgt", *args],
                env=self.environment(name),
                cwd=self.root / name,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start_server(self, *, api_workers: int = 1, trainer: bool = False) -> str:
        """`sgt serve` (API only unless `trainer`); returns its base URL once it answers."""
        port = free_port()
        name = f"server-{len(self.servers) + 1}"
        process = self._spawn(
            name,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(api_workers),
            "--trainer" if trainer else "--no-trainer",
        )
        url = f"http://127.0.0.1:{port}"
        self.servers.append((process, url))
        return url

    def start_worker(self) -> subprocess.Popen[bytes]:
        process = self._spawn(f"worker-{len(self.workers) + 1}", "worker")
        self.workers.append(process)
        return process

    def wait_until_ready(self, seconds: float = 120.0) -> None:
        for process, url in self.servers:
            wait_until(lambda p=process, u=url: self._is_healthy(p, u), seconds=seconds, what=url)

    def _is_healthy(self, process: subprocess.Popen[bytes], url: str) -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server {url} exited with {process.returncode}:\n{self.logs()}")
        try:
            return self.http.get(url + "/healthz", timeout=1.0).status_code == 200
        except httpx.TransportError:
            return False

    def call(self, url: str, path: str, **body: Any) -> Any:
        """POST /sgt<path> as the cluster user; returns the body of a 200, raises otherwise."""
        payload = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, **body}
        # A new connection each time, so that requests spread over a server's API processes.
        reply = httpx.post(f"{url}/sgt{path}", json=payload, timeout=60.0)
        if reply.status_code != 200:
            raise AssertionError(f"{path} -> {reply.status_code} {reply.text}")
        return reply.json()

    def create_user(self) -> None:
        self.call(
            self.servers[0][1],
            "/private/update_auth_token",
            key=SYSTEM_KEY,
        )

    def states(self, names: list[str]) -> dict[str, str]:
        url = self.servers[0][1]
        return {
            name: self.call(url, "/public/get_sgt_model_train_status", app_name="c", name=name)[
                "state"
            ]
            for name in names
        }

    def wait_until_converged(self, names: list[str], seconds: float) -> None:
        def all_converged() -> bool:
            self.check_processes()
            return set(self.states(names).values()) == {"converged"}

        wait_until(all_converged, seconds=seconds, what=f"{len(names)} models to converge")

    def check_processes(self) -> None:
        for process, url in self.servers:
            if process.poll() is not None:
                raise AssertionError(f"server {url} died:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"== {path.name}\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        processes = [process for process, _ in self.servers] + self.workers
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.http.close()
