"""What bench/serve.py needs around the workloads: the server process, a keep-alive client,
request bodies, memory readings and statistics. Standard library, numpy and orjson only.
"""

from __future__ import annotations

import base64
import http.client
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

SYSTEM_KEY = "bench-system-key"
SECRET_ID, SECRET_KEY = "bench", "bench-secret-key-0123456789"
CREDENTIALS = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "app_name": "bench"}


class Client:
    """One keep-alive HTTP/1.1 connection; one per thread."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.connection.request(
            "POST", "/sgt" + path, body=body, headers={"Content-Type": "application/json"}
        )
        response = self.connection.getresponse()
        return response.status, response.read()

    def post_ok(self, path: str, body: bytes) -> bytes:
        """POST `body`; the raw answer, or RuntimeError with the 400 body."""
        status, content = self.post(path, body)
        if status != 200:
            raise RuntimeError(f"{path}: {status} {content[:300]!r}")
        return content

    def call(self, path: str, payload: dict[str, Any]) -> Any:
        """POST `payload`; the decoded answer, or RuntimeError with the 400 body."""
        return orjson.loads(self.post_ok(path, orjson.dumps(payload)))

    def create_std_model(self, name: str, in_size: int, out_size: int) -> None:
        """Create the bench user's model `name` of type `std`."""
        self.call(
            "/public/create_sgt_model",
            {
                **CREDENTIALS,
                "name": name,
                "model_type": "std",
                "in_size": in_size,
                "out_size": out_size,
            },
        )

    def train_status(self, name: str) -> dict[str, Any]:
        """The training status of the bench user's model `name`."""
        status: dict[str, Any] = self.call(
            "/public/get_sgt_model_train_status", {**CREDENTIALS, "name": name}
        )
        return status

    def wait_until_converged(self, name: str, seconds: float, poll: float = 0.5) -> dict[str, Any]:
        """Poll the training status of `name` until it is converged or `seconds` have passed;
        the last status (the caller decides what not converging means)."""
        deadline = time.monotonic() + seconds
        status = self.train_status(name)
        while status["state"] != "converged" and time.monotonic() < deadline:
            time.sleep(poll)
            status = self.train_status(name)
        return status

    def add_bench_user(self) -> None:
        """Give the bench's user (CREDENTIALS) its key, as an administrator would."""
        self.call(
            "/private/update_auth_token",
            {"key": SYSTEM_KEY, "secret_id": SECRET_ID, "secret_key": SECRET_KEY},
        )

    def close(self) -> None:
        self.connection.close()


@dataclass
class Server:
    """`sgt serve` as users start it, on a free port and a temporary data directory."""

    process: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log_path: Path
    trainer: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(
        cls,
        extra_env: dict[str, str] | None = None,
        *,
        trainer_nice: int | None = None,
        trainer_threads: int = 1,
    ) -> Server:
        """`trainer_nice`: instead of the embedded trainer, `sgt worker` beside the server at
        that niceness with `trainer_threads` torch threads (an experiment: what `sgt serve`
        could do; a process of its own whose memory can be read alone)."""
        data_dir = Path(tempfile.mkdtemp(prefix="sgt-bench-"))
        port = _free_port()
        env = {
            **os.environ,
            "SGT_DATA_DIR": str(data_dir),
            "SGT_SYSTEM_KEY": SYSTEM_KEY,
            "SGT_PORT": str(port),
            **(extra_env or {}),
        }
        sgt = Path(sys.executable).with_name("sgt")
        command = [str(sgt), "serve"] if sgt.exists() else [sys.executable, "-m", "sgt", "serve"]
        if trainer_nice is not None:
            env["SGT_EMBEDDED_TRAINER"] = "false"
        log_path = data_dir / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = cls(process, port, data_dir, log_path)
        server._wait_ready()
        if trainer_nice is not None:
            niceness = trainer_nice
            with (data_dir / "worker.log").open("wb") as log:
                server.trainer = subprocess.Popen(
                    [command[0], "worker"]
                    if command[0].endswith("sgt")
                    else [*command[:3], "worker"],
                    env={**env, "SGT_TORCH_THREADS": str(trainer_threads)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=lambda: os.nice(niceness),  # noqa: PLW1509 - bench only
                )
        return server

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sgt serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("sgt serve did not become ready")

    def stop(self) -> None:
        if self.trainer is not None:
            self.trainer.terminate()
            self.trainer.wait(20)
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def checkpoint_bytes(self, name: str) -> int | None:
        """Size of the stored checkpoint of the model called `name` (the embedded SQLite
        database only); None before the first checkpoint."""
        uri = f"file:{self.data_dir / 'sgt.db'}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as database:
            row = database.execute(
                "SELECT length(c.weights) FROM checkpoints c JOIN models m ON m.id = c.model_id"
                " WHERE m.name = ?",
                (name,),
            ).fetchone()
        return None if row is None else int(row[0])

    def api_pids(self) -> list[int]:
        """The processes that answer requests: the server tree without the trainer."""
        pids = [self.process.pid, *_descendants(self.process.pid)]
        return [pid for pid in pids if "worker" not in _cmdline(pid)]

    def trainer_pids(self) -> list[int]:
        if self.trainer is not None:
            return [self.trainer.pid]
        return [pid for pid in _descendants(self.process.pid) if "worker" in _cmdline(pid)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [p for child in children for p in (child, *_descendants(child))]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_bytes(pids: list[int], field: str = "VmRSS") -> int:
    """Sum of VmRSS (now) or VmHWM (peak since the last reset) of `pids`."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def reset_peak_rss(pids: list[int]) -> bool:
    """Restart VmHWM from the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        for pid in pids:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# Bodies -------------------------------------------------------------------------------------


def random_rows(rng: np.random.Generator, rows: int, width: int) -> np.ndarray:
    """Random float32 inputs; never zeros, never the same twice."""
    return rng.standard_normal((rows, width)).astype(np.float32)


def array_object(matrix: np.ndarray) -> dict[str, Any]:
    """The binary extension's float32 matrix object, built as a standard library client would."""
    data = np.ascontiguousarray(matrix, dtype="<f4")
    return {
        "dtype": "float32",
        "shape": list(data.shape),
        "base64": base64.b64encode(data.tobytes()).decode("ascii"),
    }


def decode_array_object(value: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(value["base64"])
    return np.frombuffer(raw, dtype="<f4").reshape(value["shape"])


def run_body(name: str, matrix: np.ndarray, *, binary: bool, return_std: bool = False) -> bytes:
    data: Any = array_object(matrix) if binary else matrix.tolist()
    payload = {**CREDENTIALS, "name": name, "data": data}
    if binary:
        payload["response_format"] = "binary"
    if return_std:
        payload["return_std"] = True
    return orjson.dumps(payload)


def upload_body(name: str, inputs: np.ndarray, labels: np.ndarray, *, binary: bool) -> bytes:
    train_data: Any = (
        {"inputs": array_object(inputs), "labels": array_object(labels)}
        if binary
        else [[i, o] for i, o in zip(inputs.tolist(), labels.tolist(), strict=True)]
    )
    return orjson.dumps({**CREDENTIALS, "name": name, "train_data": train_data})


# Timing -------------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def closed_loop(
    port: int, body: bytes, path: str, *, clients: int, seconds: float
) -> dict[str, float]:
    """`clients` threads, each posting `body` back to back for `seconds`: latency and rate."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0]
    start_line = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def loop(index: int) -> None:
        client = Client(port)
        client.post(path, body)  # warm the connection and the model cache
        start_line.wait()
        mine = latencies[index]
        while time.perf_counter() < stop_at[0]:
            start = time.perf_counter()
            status, _ = client.post(path, body)
            mine.append(time.perf_counter() - start)
            if status != 200:
                failures[0] += 1
        client.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + 3600
    start_line.wait()
    began = time.perf_counter()
    stop_at[0] = began + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [value for mine in latencies for value in mine]
    return {
        "p50_ms": percentile(every, 50) * 1e3,
        "p99_ms": percentile(every, 99) * 1e3,
        "req_per_s": len(every) / elapsed,
        "requests": float(len(every)),
        "failures": float(failures[0]),
    }
