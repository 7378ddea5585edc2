"""`sgt.client.Client` over plain JSON versus the binary extension (docs/binary.md), in the same
run against one `sgt serve` started as users start it (embedded trainer off: this measures the
client and the wire, not training). Prints a table; writes JSON.

    .venv/bin/python bench/client.py [--py37] [--python PATH ...] [--repeats 3]

Times, medians of `--repeats`: `Client.run` of 50,000 x 128 -> 32 and `upload_train_data` of
20,000 x (128 + 32), each at several `chunk_rows`, from Python lists (what a DCC has) and, where
numpy is importable, from a float32 numpy array. `--py37` (or `--python`) also drives the client
from another interpreter, with only the standard library on its path, as a DCC would.

The client side runs in a child process per interpreter: this file is also that child
(`--worker`), so the worker half imports the standard library and `sgt.client` only.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SRC = Path(__file__).resolve().parents[1] / "src"
APP = "bench"
RUN_MODEL = "mesh"
IN_SIZE, OUT_SIZE = 128, 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-rows", type=int, default=50_000)
    parser.add_argument("--upload-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run-chunks", default="1000,5000,10000,50000")
    parser.add_argument("--upload-chunks", default="1000,5000,20000")
    parser.add_argument("--python", action="append", default=[], help="another client Python")
    parser.add_argument("--py37", action="store_true", help="add /root/.pyenv's Python 3.7")
    parser.add_argument("--out", type=Path, default=Path("bench/results/client.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(work(json.loads(args.worker))))
        return

    # Server-side imports only here: the worker half must import under a bare Python 3.7.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from serve_support import SECRET_ID, SECRET_KEY, SYSTEM_KEY, Server

    from sgt.client import Client

    pythons = [sys.executable, *args.python]
    if args.py37:
        found = sorted(glob.glob("/root/.pyenv/versions/3.7*/bin/python"))
        pythons += found[-1:] or []
        if not found:
            print("no Python 3.7 under /root/.pyenv; measuring", sys.executable, "only")
    server = Server.start({"SGT_EMBEDDED_TRAINER": "false"})
    try:
        url = f"http://127.0.0.1:{server.port}"
        admin = Client(url, SECRET_ID, SECRET_KEY)
        admin.update_auth_token(SYSTEM_KEY, SECRET_ID, SECRET_KEY)
        admin.create_model(RUN_MODEL, APP, in_size=IN_SIZE, out_size=OUT_SIZE)
        plan = {
            "url": url,
            "secret_id": SECRET_ID,
            "secret_key": SECRET_KEY,
            "run_rows": args.run_rows,
            "upload_rows": args.upload_rows,
            "repeats": args.repeats,
            "run_chunks": [int(c) for c in args.run_chunks.split(",")],
            "upload_chunks": [int(c) for c in args.upload_chunks.split(",")],
        }
        results = []
        for index, python in enumerate(pythons):
            plan["prefix"] = f"py{index}"
            results.extend(run_worker(python, plan))
    finally:
        server.stop()
    print_table(results, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"plan": plan, "results": results}, indent=2))


def run_worker(python: str, plan: dict[str, Any]) -> list[dict[str, Any]]:
    """This file's `--worker` half under `python`, with only `src/` added to its path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTHON")}
    env["PYTHONPATH"] = str(SRC)
    command = [python, "-s", __file__, "--worker", json.dumps(plan)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def print_table(results: list[dict[str, Any]], repeats: int) -> None:
    print(f"median of {repeats}; seconds; speed-up = JSON / binary")
    header = ("python", "call", "input", "chunk_rows", "requests", "json", "binary", "speed-up")
    print("{:>7} {:>7} {:>6} {:>10} {:>8} {:>7} {:>7} {:>8}".format(*header))
    for row in results:
        print(
            "{:>7} {:>7} {:>6} {:>10,} {:>8} {:>7.2f} {:>7.3f} {:>7.1f}x".format(
                row["python"],
                row["call"],
                row["input"],
                row["chunk_rows"],
                row["requests"],
                row["json"],
                row["binary"],
                row["json"] / row["binary"],
            )
        )


# The worker half: the standard library and sgt.client only, parseable by Python 3.7.


def work(plan: dict[str, Any]) -> list[dict[str, Any]]:
    from sgt.client import Client

    generator = random.Random(0)
    width = IN_SIZE + OUT_SIZE
    run_data = [[generator.uniform(-1, 1) for _ in range(IN_SIZE)] for _ in range(plan["run_rows"])]
    samples = [[generator.uniform(-1, 1) for _ in range(width)] for _ in range(plan["upload_rows"])]
    inputs, labels = [s[:IN_SIZE] for s in samples], [s[IN_SIZE:] for s in samples]
    inputs_kinds = [("lists", run_data, inputs, labels)]
    try:
        import numpy as np

        as32 = lambda rows: np.array(rows, dtype=np.float32)  # noqa: E731
        inputs_kinds.append(("numpy", as32(run_data), as32(inputs), as32(labels)))
    except ImportError:
        pass
    python = "{}.{}".format(*sys.version_info[:2])

    def client(binary: bool, chunk_rows: int) -> Client:
        return Client(
            plan["url"],
            plan["secret_id"],
            plan["secret_key"],
            binary=binary,
            chunk_rows=chunk_rows,
            timeout=600,
        )

    results = []
    for kind, data, upload_inputs, upload_labels in inputs_kinds:
        for chunk_rows in plan["run_chunks"]:
            medians = {}
            for binary in (False, True):
                runner = client(binary, chunk_rows)
                runner.run(RUN_MODEL, APP, data[:10])  # warm the model cache
                medians[binary] = time_run(runner, data, plan["repeats"])
            results.append(row(python, "run", kind, chunk_rows, plan["run_rows"], medians))
        for chunk_rows in plan["upload_chunks"]:
            medians = {}
            for binary in (False, True):
                uploader = client(binary, chunk_rows)
                name = f"{plan['prefix']}-{kind}-{chunk_rows}-{binary}"
                uploader.create_model(name, APP, in_size=IN_SIZE, out_size=OUT_SIZE)
                medians[binary] = time_upload(
                    uploader, name, upload_inputs, upload_labels, plan["repeats"]
                )
            results.append(row(python, "upload", kind, chunk_rows, plan["upload_rows"], medians))
    return results


def time_run(client: Any, data: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        client.run(RUN_MODEL, APP, data)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_upload(client: Any, name: str, inputs: Any, labels: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        client.clear_train_data(name, APP)  # the same table size before each upload
        started = time.perf_counter()
        client.upload_train_data(name, APP, inputs, labels)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def row(
    python: str, call: str, kind: str, chunk_rows: int, rows: int, medians: dict[bool, float]
) -> dict[str, Any]:
    return {
        "python": python,
        "call": call,
        "input": kind,
        "chunk_rows": chunk_rows,
        "requests": -(-rows // chunk_rows),
        "json": medians[False],
        "binary": medians[True],
    }


if __name__ == "__main__":
    main()
