"""Faults under load: `sgt serve` killed with SIGKILL N times at random moments while a client
uploads and the embedded trainer trains, restarted each time on the same data; on PostgreSQL
also M restarts of the database server. Prints what a user would ask afterwards:

- acknowledged rows lost: rows whose upload was answered 200 but that the model does not count
  (must be 0); rows stored without an answer (the upload in flight when the server died) are shown
  apart;
- every restart serving: each restarted server answers /healthz and a status request, and how
  long that took; for each database restart, how long `pg_ctlcluster restart` took and then
  how long until /readyz was ready again (and the reasons of the 503s seen meanwhile);
- the model converging afterwards: once the faults stop, seconds until it is `converged` on every
  stored row, and that it predicts.

    .venv/bin/python bench/faults.py [--kills 25] [--pg-restarts 3] [--backend postgres|sqlite]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--pg-cluster "15 main"]

PostgreSQL restarts go through `pg_ctlcluster --skip-systemctl-redirect <cluster> restart` (root):
point --pg-url and --pg-cluster at a cluster nobody else uses, e.g. one made with
`pg_createcluster 15 faults --port 5433 --start -- --auth=trust`. The cluster is started again if
it is down when the script ends.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import make_url

SYSTEM_KEY = "faults-system-key"
USER = {"secret_id": "faults", "secret_key": "faults-key-0123456789"}
MODEL = {"app_name": "faults", "name": "m"}
ROWS_PER_UPLOAD = 20
SERVE_DEADLINE_SECONDS = 120.0
CONVERGE_DEADLINE_SECONDS = 300.0
TIMINGS = {
    "SGT_CHECKPOINT_SECONDS": "0.5",
    "SGT_HEARTBEAT_SECONDS": "0.5",
    "SGT_POLL_SECONDS": "0.2",
    "SGT_LEASE_SECONDS": "10",
    "SGT_MAX_TRAIN_SECONDS": "30",
    "SGT_TORCH_THREADS": "1",
    "SGT_TRAINER_STALE_SECONDS": "15",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def request(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One request on a new connection; raises OSError when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(content)
    except ValueError:
        return response.status, content.decode(errors="replace")


def call(port: int, path: str, **fields: Any) -> Any:
    status, answer = request(port, "POST", "/sgt" + path, {**USER, **MODEL, **fields})
    if status != 200:
        raise RuntimeError(f"{path}: {status} {answer}")
    return answer


def wait_for(condition: Any, deadline_seconds: float, what: str) -> float:
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except (OSError, RuntimeError, http.client.HTTPException):
            pass
        if time.monotonic() - started > deadline_seconds:
            raise RuntimeError(f"not {what} after {deadline_seconds} s")
        time.sleep(0.1)


class Serve:
    """`sgt serve` on one data directory and database, started again after every kill."""

    def __init__(self, data_dir: Path, database_url: str | None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.lower().startswith("sgt")},
            **TIMINGS,
            "SGT_DATA_DIR": str(data_dir),
            "SGT_SYSTEM_KEY": SYSTEM_KEY,
            "SGT_PORT": str(self.port),
            "SGT_LOG_LEVEL": "warning",
        }
        if database_url:
            self.env["SGT_DATABASE_URL"] = database_url
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / "serve.log"

    def start(self) -> float:
        """Start and wait until it serves (healthz and a status request); returns the seconds."""
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sgt", "serve"],
                env=self.env,
                cwd=self.data_dir.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.is_serving, SERVE_DEADLINE_SECONDS, "serving")
        return time.monotonic() - started

    def is_serving(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise SystemExit(f"sgt serve exited:\n{self.log_path.read_text()[-3000:]}")
        if request(self.port, "GET", "/healthz")[0] != 200:
            return False
        reply = request(self.port, "POST", "/sgt/public/read_my_sgt_model", USER)
        return reply[0] == 200 or "AuthException" in str(reply[1])

    def kill(self) -> None:
        """SIGKILL `sgt serve`; its trainer gets SIGTERM from the kernel (PDEATHSIG) and is
        waited for, so the next start never races it for the port or the data."""
        assert self.process is not None
        children = child_pids(self.process.pid)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        wait_for(lambda: not any(is_running(pid) for pid in children), 60, "trainer gone")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(60)


def child_pids(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def is_running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_ready(serve: Serve, reasons: Counter[str]) -> bool:
    status, answer = request(serve.port, "GET", "/readyz")
    if status != 200:
        reasons[answer.get("reason", "?") if isinstance(answer, dict) else "?"] += 1
    return status == 200


class Uploader(threading.Thread):
    """Uploads batches until stopped; counts the rows each answered 200 acknowledged."""

    def __init__(self, serve: Serve, seed: int) -> None:
        super().__init__(daemon=True)
        self.serve = serve
        self.rng = np.random.default_rng(seed)
        self.acknowledged = self.attempted = self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            inputs = self.rng.uniform(-1, 1, (ROWS_PER_UPLOAD, 3))
            targets = np.stack([np.sin(inputs[:, 0]) + inputs[:, 1], inputs[:, 2] ** 2], axis=1)
            pairs = [[x.tolist(), y.tolist()] for x, y in zip(inputs, targets, strict=True)]
            self.attempted += ROWS_PER_UPLOAD
            try:
                call(self.serve.port, "/public/upload_sgt_model_train_data", train_data=pairs)
                self.acknowledged += ROWS_PER_UPLOAD
            except (OSError, RuntimeError, http.client.HTTPException):
                self.failed += 1
                self.stopping.wait(0.1)  # the server is down or the database away: try again
            self.stopping.wait(0.05)


def pg_admin(pg_url: str, statement: str) -> None:
    conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(statement)


def pg_isready(pg_url: str) -> bool:
    url = make_url(pg_url)
    probe = ["pg_isready", "-q", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    return subprocess.run(probe, check=False).returncode == 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="sgt-faults-"))
    database_url = None
    database_name = f"sgt_bench_faults_{secrets.token_hex(4)}"
    if args.backend == "postgres":
        pg_admin(args.pg_url, f'CREATE DATABASE "{database_name}"')
        database_url = (
            make_url(args.pg_url).set(database=database_name).render_as_string(hide_password=False)
        )
    serve = Serve(root / "data", database_url)
    uploader = Uploader(serve, args.seed)
    figures: dict[str, Any] = {"backend": args.backend, "kills": args.kills}
    cluster = args.pg_cluster.split()
    try:
        serve.start()
        status, answer = request(
            serve.port,
            "POST",
            "/sgt/private/update_auth_token",
            {"key": SYSTEM_KEY, **USER},
        )
        assert status == 200, answer
        call(serve.port, "/public/create_sgt_model", model_type="mlp", in_size=3, out_size=2)
        uploader.start()
        restart_seconds: list[float] = []
        pg_ready_seconds: list[float] = []
        pg_command_seconds: list[float] = []
        not_ready_reasons: Counter[str] = Counter()
        pg_restart_after = (
            set(rng.sample(range(args.kills), args.pg_restarts))
            if args.backend == "postgres"
            else set()
        )
        for kill in range(args.kills):
            time.sleep(rng.uniform(0.5, 4.0))  # a random moment of uploads and training
            serve.kill()
            restart_seconds.append(serve.start())
            if kill in pg_restart_after:
                time.sleep(rng.uniform(0.5, 3.0))
                restarted = time.monotonic()
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "restart"],
                    check=True,
                    capture_output=True,
                )
                returned = time.monotonic()
                pg_command_seconds.append(returned - restarted)
                wait_for(
                    lambda: is_ready(serve, not_ready_reasons),
                    SERVE_DEADLINE_SECONDS,
                    "ready after the database restart",
                )
                pg_ready_seconds.append(time.monotonic() - returned)
            print(f"kill {kill + 1}/{args.kills}: serving again in {restart_seconds[-1]:.1f} s")
        uploader.stopping.set()
        uploader.join()

        def converged() -> bool:
            state = call(serve.port, "/public/get_sgt_model_train_status")
            return bool(
                state["state"] == "converged"
                and state["trained_sample_count"] == state["sample_count"]
            )

        converge_seconds = wait_for(converged, CONVERGE_DEADLINE_SECONDS, "converged")
        state = call(serve.port, "/public/get_sgt_model_train_status")
        prediction = call(serve.port, "/public/run_sgt_model", data=[[0.1, 0.2, 0.3]])
        ready = request(serve.port, "GET", "/readyz")[0] == 200
        metrics = request(serve.port, "GET", "/metrics")[1]
        alive = [
            line for line in str(metrics).splitlines() if line.startswith("sgt_trainers_alive")
        ]
        stored = int(state["sample_count"])
        figures.update(
            restarts_serving=f"{len(restart_seconds)}/{args.kills}",
            restart_seconds_median=round(statistics.median(restart_seconds), 1),
            restart_seconds_max=round(max(restart_seconds), 1),
            pg_restarts=len(pg_ready_seconds),
            pg_restart_command_seconds=[round(value, 1) for value in pg_command_seconds],
            pg_ready_seconds_after_restart=[round(value, 1) for value in pg_ready_seconds],
            readyz_503_reasons_seen=dict(not_ready_reasons),
            uploads_failed_while_down=uploader.failed,
            rows_acknowledged=uploader.acknowledged,
            rows_stored=stored,
            acknowledged_rows_lost=max(0, uploader.acknowledged - stored),
            rows_stored_unacknowledged=max(0, stored - uploader.acknowledged),
            converged_seconds_after_faults=round(converge_seconds, 1),
            steps=state["steps"],
            predicts=bool(np.isfinite(np.asarray(prediction, dtype=float)).all()),
            readyz_ready=ready,
            trainers_alive=alive[0].split()[-1] if alive else "?",
        )
        return figures
    finally:
        uploader.stopping.set()
        serve.stop()
        if args.backend == "postgres":
            if not pg_isready(args.pg_url):
                subprocess.run(
                    ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "start"], check=False
                )
            wait_for(lambda: pg_isready(args.pg_url), 120, "PostgreSQL back")
            pg_admin(args.pg_url, f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--pg-restarts", type=int, default=3)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-cluster", default="15 main")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = run(args)
    print(json.dumps(figures, indent=2))
    if figures["acknowledged_rows_lost"] != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
