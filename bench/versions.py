"""Rollback latency through the API, against one `sgt serve` started as users start it.

    .venv/bin/python bench/versions.py [--repeats 20] [--rows 40] [--database-url URL]

Trains one `std` 3 -> 2 model to two converged versions (the embedded trainer), then rolls it
back and forth between them `--repeats` times. Prints, per rollback: the `rollback_sgt_model`
round trip, and the round trip of the first `run_sgt_model` after it (which reloads the weights
into the API process's cache); medians and 90th percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_support import CREDENTIALS, Client, Server

MODEL = {**CREDENTIALS, "name": "arm"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--database-url", help="PostgreSQL URL (default: the embedded SQLite)")
    args = parser.parse_args()
    extra = {"SGT_DATABASE_URL": args.database_url} if args.database_url else {}
    server = Server.start({**extra, "SGT_CHECKPOINT_SECONDS": "0.5", "SGT_POLL_SECONDS": "0.2"})
    try:
        client = Client(server.port)
        prepare(client, args.rows)
        rollback_ms, first_run_ms = measure(client, args.repeats)
        client.close()
    finally:
        server.stop()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"rollback latency, {backend}, {args.repeats} rollbacks (ms)")
    print(f"{'':<28}{'median':>8}{'p90':>8}")
    for label, values in (
        ("rollback_sgt_model", rollback_ms),
        ("first run_sgt_model after", first_run_ms),
    ):
        p90 = float(np.percentile(values, 90))
        print(f"{label:<28}{statistics.median(values):>8.2f}{p90:>8.2f}")


def prepare(client: Client, rows: int) -> None:
    client.add_bench_user()
    client.call(
        "/public/create_sgt_model",
        {**MODEL, "model_type": "std", "in_size": 3, "out_size": 2, "client_data": None},
    )
    rng = np.random.default_rng(0)
    for scale in (1.0, -5.0):
        inputs = rng.uniform(-1, 1, size=(rows, 3))
        labels = scale * np.stack([np.sin(inputs[:, 0]), inputs[:, 1] * inputs[:, 2]], axis=1)
        pairs = [[x.tolist(), y.tolist()] for x, y in zip(inputs, labels, strict=True)]
        client.call("/public/upload_sgt_model_train_data", {**MODEL, "train_data": pairs})
        wait_until_converged(client)
    listed = client.call("/public/list_sgt_model_versions", MODEL)
    if len(listed) < 2:
        raise RuntimeError(f"expected two versions, got {listed}")


def wait_until_converged(client: Client, deadline_seconds: float = 300.0) -> None:
    status = client.wait_until_converged(str(MODEL["name"]), deadline_seconds, poll=0.2)
    if status["state"] != "converged":
        raise RuntimeError("the model did not converge in time")


def measure(client: Client, repeats: int) -> tuple[list[float], list[float]]:
    probe = {**MODEL, "data": [[0.1, -0.4, 0.9]]}
    client.call("/public/run_sgt_model", probe)
    rollback_ms, first_run_ms = [], []
    for attempt in range(repeats):
        started = time.perf_counter()
        client.call("/public/rollback_sgt_model", {**MODEL, "version": 1 + attempt % 2})
        rolled_back = time.perf_counter()
        client.call("/public/run_sgt_model", probe)
        ran = time.perf_counter()
        rollback_ms.append((rolled_back - started) * 1000)
        first_run_ms.append((ran - rolled_back) * 1000)
    return rollback_ms, first_run_ms


if __name__ == "__main__":
    main()
