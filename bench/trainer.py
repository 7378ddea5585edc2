"""Trainer efficiency: training throughput of a 10,000 x (128 -> 32) model, the `std` prediction
cost of what it trained, the CPU an idle trainer uses, and how soon deleting a model stops its
training.

    .venv/bin/python bench/trainer.py               # about 4 minutes
    .venv/bin/python bench/trainer.py --quick       # about a minute

Throughput is measured through the model type interface (`start_training`, then `step` until
converged or the time is up), with 2 and with 1 torch threads. For the MLP ensemble that `std`
trains, one update runs a minibatch of `batch` rows through each of its members, so
samples x epochs / s = updates x batch / seconds (member passes: that times the members).
The idle figure starts `sgt serve`, trains one small model to convergence, then reads the
trainer process's CPU time over `--idle-seconds`. The delete figure runs a trainer in this process
on a temporary SQLite file, with a model type that never converges, deletes the model once a
checkpoint is written and times until `train_next` returns (the claim: within one heartbeat).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from serve_support import (
    CREDENTIALS,
    Client,
    Server,
    cpu_seconds,
)

from sgt.config import Settings
from sgt.domain.models import ModelSpec
from sgt.ml.base import ModelShape, ModelType, Predictor, TrainingProgress, TrainingRun
from sgt.ml.families import mlp
from sgt.ml.registry import get_model_type
from sgt.services import models, samples
from sgt.services.context import open_context
from sgt.services.users import authenticate, put_user
from sgt.storage.queue import TrainingQueue
from sgt.training.timings import WorkerTimings
from sgt.training.worker import Worker

SHAPE = ModelShape(128, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=40.0, help="cap per training measure")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="10 s caps, 20 s idle")
    parser.add_argument("--idle-only", action="store_true", help="only the idle trainer's CPU")
    parser.add_argument("--delete-only", action="store_true", help="only delete -> stop latency")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "trainer.json"))
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.idle_seconds = 10.0, 20.0
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((args.rows, SHAPE.in_size)).astype(np.float32)
    mixing = rng.standard_normal((SHAPE.in_size, SHAPE.out_size)).astype(np.float32)
    targets = np.tanh(inputs @ mixing / np.sqrt(SHAPE.in_size)).astype(np.float32)
    results: dict[str, Any] = {"rows": args.rows, "load": list(os.getloadavg())}
    if args.delete_only:
        results["delete_stop"] = delete_stop_latency()
        print(results["delete_stop"])
        return
    if args.idle_only:
        results["idle"] = idle_trainer_cpu(args.idle_seconds)
        print(results["idle"])
        return
    for threads in (2, 1):
        torch.set_num_threads(threads)
        results[f"ensemble_{threads}_threads"] = ensemble_throughput(inputs, targets, args.seconds)
    torch.set_num_threads(2)
    results["std"] = std_run(inputs, targets, args.seconds)
    results["idle"] = idle_trainer_cpu(args.idle_seconds)
    results["delete_stop"] = delete_stop_latency()
    results["load_after"] = list(os.getloadavg())
    report(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.out}")


def ensemble_throughput(inputs: np.ndarray, targets: np.ndarray, seconds: float) -> dict[str, Any]:
    """The std ensemble's candidate (4 MLPs) stepped for `seconds`."""
    config = mlp.ENSEMBLE
    model_type = mlp.MlpModelType(name="bench-ensemble", description="", config=config)
    run = model_type.start_training(SHAPE, inputs, targets, start=None, seed=0, device="cpu")
    batch = min(len(inputs), max(32, min(256, len(inputs) // 10)))  # as MlpRun chooses
    started = time.perf_counter()
    steps = 0
    progress = None
    while time.perf_counter() - started < seconds:
        progress = run.step()
        steps += 1
        if progress.is_converged:
            break
    elapsed = time.perf_counter() - started
    updates = steps * config.updates_per_step
    return {
        "torch_threads": torch.get_num_threads(),
        "seconds": elapsed,
        "updates": updates,
        "batch": batch,
        "members": config.members,
        "samples_epochs_per_s": updates * batch / elapsed,
        "member_sample_passes_per_s": updates * batch * config.members / elapsed,
        "converged": bool(progress and progress.is_converged),
        "val_loss": None if progress is None else progress.val_loss,
    }


def std_run(inputs: np.ndarray, targets: np.ndarray, seconds: float) -> dict[str, Any]:
    """A whole `std` run as the trainer drives it, then the cost of its predictions."""
    run = get_model_type("std").start_training(
        SHAPE, inputs, targets, start=None, seed=0, device="cpu"
    )
    started = time.perf_counter()
    steps = 0
    progress = None
    while time.perf_counter() - started < seconds * 3:
        progress = run.step()
        steps += 1
        if progress.is_converged:
            break
    elapsed = time.perf_counter() - started
    predictor = run.best()
    queries = np.random.default_rng(1).standard_normal((20_000, SHAPE.in_size)).astype(np.float32)
    predict: dict[str, float] = {}
    for threads in (2, 1):
        torch.set_num_threads(threads)
        predictor.predict(queries[:100])
        times = []
        for _ in range(3):
            start = time.perf_counter()
            predictor.predict(queries)
            times.append(time.perf_counter() - start)
        predict[f"{threads}_threads_s"] = float(np.median(times))
    torch.set_num_threads(2)
    return {
        "seconds": elapsed,
        "reports": steps,
        "converged": bool(progress and progress.is_converged),
        "val_loss": None if progress is None else progress.val_loss,
        "picked": type(predictor).__name__ + f" ({getattr(predictor, 'kind', '?')})",
        "predict_20000x128": predict,
    }


def idle_trainer_cpu(seconds: float) -> dict[str, Any]:
    server = Server.start()
    try:
        client = Client(server.port)
        client.add_bench_user()
        client.create_std_model("idle", 4, 1)
        rows = np.random.default_rng(2).standard_normal((64, 4)).tolist()
        pairs = [[row, [sum(row)]] for row in rows]
        client.call(
            "/public/upload_sgt_model_train_data",
            {**CREDENTIALS, "name": "idle", "train_data": pairs},
        )
        state = client.wait_until_converged("idle", 300)["state"]
        if state != "converged":
            print(server.log_path.read_text()[-3000:], file=sys.stderr)
        trainers, api = server.trainer_pids(), server.api_pids()
        time.sleep(2)  # let the last checkpoint and release settle
        before = [sum(cpu_seconds(p) for p in group) for group in (trainers, api)]
        time.sleep(seconds)
        after = [sum(cpu_seconds(p) for p in group) for group in (trainers, api)]
        client.close()
    finally:
        server.stop()
    return {
        "state": state,
        "seconds": seconds,
        "trainer_cpu_percent_of_a_core": 100 * (after[0] - before[0]) / seconds,
        "api_cpu_percent_of_a_core": 100 * (after[1] - before[1]) / seconds,
    }


class _EndlessPredictor(Predictor):
    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.zeros((len(inputs), 1), np.float32)

    def to_bytes(self) -> bytes:
        return b"endless"


class _EndlessRun(TrainingRun):
    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> TrainingProgress:
        time.sleep(0.005)  # a small bounded step, as a real run's
        self.steps += 1
        return TrainingProgress(self.steps, 1 / self.steps, None, True, False)

    def best(self) -> Predictor:
        return _EndlessPredictor()


class _EndlessType(ModelType):
    name, description = "mlp", "improves forever, never converges"

    def parameter_count(self, shape: ModelShape) -> int:
        return 1

    def initial(self, shape: ModelShape, *, seed: int) -> Predictor:
        return _EndlessPredictor()

    def load(self, data: bytes, *, device: str) -> Predictor:
        return _EndlessPredictor()

    def start_training(self, *args: Any, **kwargs: Any) -> TrainingRun:
        return _EndlessRun()


def delete_stop_latency(repeats: int = 5, heartbeat_seconds: float = 0.2) -> dict[str, Any]:
    """Seconds from a committed delete to the trainer giving the model up, `repeats` times."""
    latencies = []
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir), system_key="bench", heartbeat_seconds=heartbeat_seconds
        )
        ctx = open_context(settings)
        put_user(ctx, secret_id="bench", secret_key="bench-key", doc="")
        user = authenticate(ctx, "bench", "bench-key")
        timings = WorkerTimings.from_settings(settings)
        queue = TrainingQueue(ctx.db, worker_name="bench", lease_seconds=timings.lease_seconds)
        worker = Worker(queue, timings=timings, model_types=lambda _name: _EndlessType())
        rows = np.random.default_rng(3).standard_normal((32, 4)).tolist()
        pairs = [[row, [sum(row)]] for row in rows]
        for attempt in range(repeats):
            name = f"doomed-{attempt}"
            spec = ModelSpec("mlp", 4, 1)
            models.create_model(
                ctx, user, app_name="b", name=name, spec=spec, client_data=None, is_public=False
            )
            samples.upload_samples(ctx, user, app_name="b", name=name, train_data=pairs)
            thread = threading.Thread(target=worker.train_next)
            thread.start()
            while samples.read_training_status(ctx, user, app_name="b", name=name).steps == 0:
                time.sleep(0.01)
            models.delete_model(ctx, user, app_name="b", name=name)
            deleted = time.perf_counter()
            thread.join()
            latencies.append(time.perf_counter() - deleted)
        ctx.close()
    return {
        "heartbeat_seconds": heartbeat_seconds,
        "median_s": statistics.median(latencies),
        "max_s": max(latencies),
    }


def report(results: dict[str, Any]) -> None:
    print(
        f"\ntrainer bench, {os.cpu_count()} CPUs, load {results['load']} -> {results['load_after']}"
    )
    for threads in (2, 1):
        got = results[f"ensemble_{threads}_threads"]
        print(
            f"std ensemble (4 MLPs), {results['rows']:,} x 128 -> 32, {threads} torch thread(s): "
            f"{got['samples_epochs_per_s']:,.0f} samples x epochs / s "
            f"({got['member_sample_passes_per_s']:,.0f} member passes / s, "
            f"{got['updates']} updates in {got['seconds']:.1f} s"
            f"{', converged' if got['converged'] else ''})"
        )
    run = results["std"]
    print(
        f"std run: {run['seconds']:.1f} s, {'converged' if run['converged'] else 'NOT converged'}, "
        f"picked {run['picked']}, val_loss {run['val_loss']}; its predict of 20,000 x 128: "
        + ", ".join(
            f"{k.replace('_s', '')} {v * 1e3:,.0f} ms" for k, v in run["predict_20000x128"].items()
        )
    )
    idle = results["idle"]
    print(
        f"idle trainer ({idle['state']}): {idle['trainer_cpu_percent_of_a_core']:.2f} % of a core "
        f"over {idle['seconds']:.0f} s (API process {idle['api_cpu_percent_of_a_core']:.2f} %)"
    )
    stop = results["delete_stop"]
    print(
        f"delete -> training stopped: median {stop['median_s'] * 1e3:.0f} ms, "
        f"max {stop['max_s'] * 1e3:.0f} ms (heartbeat {stop['heartbeat_seconds']} s)"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
