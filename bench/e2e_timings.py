"""The timings the e2e tests used to assert or print, measured on a real `sgt serve`.

    .venv/bin/python bench/e2e_timings.py [--repeats 20] [--learn-runs 1] [--out PATH]

- refusal: how long a create with in_size = out_size = 10**9 takes to be refused, against a
  create of a small valid model (median and slowest of `--repeats`); the test
  `test_a_huge_in_size_is_refused_before_anything_is_allocated` checks only that it is refused
  and allocates nothing;
- learning: the case of `test_a_smooth_function_is_learned` (300 rows of the smooth 3 -> 2
  function, `std`): seconds from the start of the upload until the status says `converged`,
  with the held-out R^2 and the steps; the test checks only the result, within a deadline.

It starts the server exactly as the e2e tests do (`tests/e2e/e2e_server.py`, the same short
trainer timings). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import numpy as np  # noqa: E402
from e2e_server import Session, SgtServer, register_user  # noqa: E402

from factories import make_samples, r_squared  # noqa: E402
from sgt.client import Client  # noqa: E402

SYSTEM_KEY = "bench-system-key"


def create_body(name: str, in_size: int, out_size: int) -> dict[str, Any]:
    return {
        "name": name,
        "app_name": "bench",
        "model_type": "std",
        "client_data": None,
        "in_size": in_size,
        "out_size": out_size,
        "is_public": False,
    }


def milliseconds(action: Any) -> float:
    began = time.perf_counter()
    action()
    return (time.perf_counter() - began) * 1000


def measure_refusal(user: Session, repeats: int) -> dict[str, Any]:
    refused, accepted = [], []
    for index in range(repeats):
        huge = create_body(f"huge{index}", 10**9, 10**9)
        refused.append(
            milliseconds(lambda body=huge: user.post("/public/create_sgt_model", **body))
        )
        small = create_body(f"small{index}", 3, 2)
        accepted.append(
            milliseconds(lambda body=small: user.ok("/public/create_sgt_model", **body))
        )
    assert not any(m["name"].startswith("huge") for m in user.my_models()), "a huge one was made"
    return {
        "refused_median_ms": statistics.median(refused),
        "refused_max_ms": max(refused),
        "small_create_median_ms": statistics.median(accepted),
        "small_create_max_ms": max(accepted),
    }


def measure_learning(user: Session, run: int) -> dict[str, Any]:
    client = Client(user.server.base_url, user.secret_id, user.secret_key, chunk_rows=128)
    inputs, targets = make_samples(400, seed=2026)
    name = f"smooth{run}"
    client.create_model(name, "bench", in_size=3, out_size=2)
    began = time.monotonic()
    client.upload_train_data(name, "bench", inputs=inputs[:300], labels=targets[:300])
    status = user.wait_for_state(name, "converged", app_name="bench", deadline_seconds=600)
    seconds = time.monotonic() - began
    predictions = np.array(client.run(name, "bench", inputs[300:]))
    client.delete_model(name, "bench")
    return {
        "seconds_to_converged": seconds,
        "held_out_r2": r_squared(targets[300:], predictions),
        "steps": status["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="creates per refusal case")
    parser.add_argument("--learn-runs", type=int, default=1, help="learning runs (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "e2e_timings.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sgt-bench-e2e-") as root:
        server = SgtServer(Path(root) / "data", system_key=SYSTEM_KEY)
        server.start()
        try:
            user = register_user(server, "bench")
            refusal = measure_refusal(user, args.repeats)
            learning = [measure_learning(user, run) for run in range(args.learn_runs)]
        finally:
            server.close()

    print(f"create in_size=out_size=10**9, refused ({args.repeats} times):")
    print(
        f"  median {refusal['refused_median_ms']:.1f} ms, "
        f"slowest {refusal['refused_max_ms']:.1f} ms"
    )
    print(
        f"  a small valid create: median {refusal['small_create_median_ms']:.1f} ms, "
        f"slowest {refusal['small_create_max_ms']:.1f} ms"
    )
    for run in learning:
        print(
            f"learn 300 rows of the smooth 3 -> 2 function: converged after "
            f"{run['seconds_to_converged']:.1f} s, held-out R^2 {run['held_out_r2']:.4f}, "
            f"{run['steps']} steps"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": platform.node(),
        "python": platform.python_version(),
        "refusal": refusal,
        "learning": learning,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
