"""Part 2 of bench/uncertainty.py: what `return_std` costs at 20,000 rows (issue 17; target: at
most 2x the plain run). Through `sgt serve` (the request a client waits for, JSON and binary:
the verdict) and in process (the model alone). docs/uncertainty.md.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
from quality import TASKS, Task, train_sgt_run
from serve_support import Client, Server, run_body, upload_body

LATENCY_ROWS = 20_000
LATENCY_TASKS = ("friedman1_200", "friedman1_1000", "skinning")
LATENCY_TARGET_RATIO = 2.0
RUN, UPLOAD = "/public/run_sgt_model", "/public/upload_sgt_model_train_data"


def latency_rows(task: Task) -> np.ndarray:
    rng = np.random.default_rng(0)
    return task.test_inputs[rng.integers(len(task.test_inputs), size=LATENCY_ROWS)]


def run_latency(budget: float, cap: float, repeats: int = 9) -> None:
    """In process: the model alone, without the request around it."""
    print(f"\n## Latency at {LATENCY_ROWS:,} rows, in process (the model alone)\n")
    print("| model | served | predict (s) | predict_with_std + out_of_range (s) | ratio |")
    print("|---|---|---|---|---|")
    for name in LATENCY_TASKS:
        [task] = TASKS[name]()
        predictor = train_sgt_run(task, "std", budget, seed=0, cap_seconds=cap)[0].best()
        rows = latency_rows(task)
        plain, with_std = interleaved_median_seconds(
            lambda p=predictor, r=rows: p.predict(r),
            lambda p=predictor, r=rows: (p.predict_with_std(r), p.out_of_range(r)),
            repeats,
        )
        print(
            f"| {name} | {predictor.kind} | {plain:.3f} | {with_std:.3f} | {with_std / plain:.2f} |"
        )


def run_served_latency(cap: float, repeats: int = 9) -> None:
    """Through `sgt serve`, started as users start it: each model trained by its own trainer to
    convergence, then one client's 20,000-row run with and without return_std, in turns."""
    print(
        f"\n## Latency at {LATENCY_ROWS:,} rows through `sgt serve` "
        f"(target: return_std at most {LATENCY_TARGET_RATIO:g}x the plain run)\n"
    )
    print("| model | body | run (s) | run with return_std (s) | ratio | verdict |")
    print("|---|---|---|---|---|---|")
    server = Server.start()
    try:
        client = Client(server.port)
        client.add_bench_user()
        for name in LATENCY_TASKS:
            [task] = TASKS[name]()
            model = f"latency-{name}"
            train_served(client, model, task, cap)
            rows = latency_rows(task)
            for binary in (False, True):
                plain_body = run_body(model, rows, binary=binary)
                std_body = run_body(model, rows, binary=binary, return_std=True)
                plain, with_std = interleaved_median_seconds(
                    lambda b=plain_body: client.post_ok(RUN, b),
                    lambda b=std_body: client.post_ok(RUN, b),
                    repeats,
                )
                ratio = with_std / plain
                verdict = "met" if ratio <= LATENCY_TARGET_RATIO else "missed"
                print(
                    f"| {name} | {'binary' if binary else 'JSON'} | {plain:.3f} | {with_std:.3f} "
                    f"| {ratio:.2f} | {verdict} |"
                )
        client.close()
    finally:
        server.stop()


def train_served(client: Client, model: str, task: Task, cap: float) -> None:
    """Create `model` as `std`, upload the task's training rows, wait until it converges."""
    client.create_std_model(model, task.train_inputs.shape[1], task.train_targets.shape[1])
    client.post_ok(UPLOAD, upload_body(model, task.train_inputs, task.train_targets, binary=True))
    if client.wait_until_converged(model, cap)["state"] != "converged":
        raise RuntimeError(f"{model} did not converge within {cap:.0f} s")


def interleaved_median_seconds(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median seconds of each, timed in turns so that a busy spell of the machine slows both."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for work, spent in zip((first, second), times, strict=True):
            began = time.perf_counter()
            work()
            spent.append(time.perf_counter() - began)
    return statistics.median(times[0]), statistics.median(times[1])
