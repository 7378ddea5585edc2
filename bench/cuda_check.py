"""GPU against CPU inference of a `std` model: trains `std` on 300 random rows of a smooth
128 -> 32 function on `--device`, then times `predict` of 20,000 rows there and on the CPU (the
same checkpoint read back with `load(device=...)`) and checks both answer the same.

    python3 bench/cuda_check.py                   # on a GPU machine (bench/cuda_check.sh runs it)
    .venv/bin/python bench/cuda_check.py --device cpu   # smoke test here: CPU against CPU

Prints the median milliseconds of each. A GP serves in float64 on every device (gp_posterior.py):
its answers on each device are compared with the float64 posterior mean computed on the CPU, and
the check fails when the GPU's error exceeds twice the CPU's (or `--rtol` of the largest
prediction). Other model families compare the two devices directly against `--rtol`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.families.gp_posterior import GpPredictor, variances
from sgt.ml.numerics.kernels import covariance
from sgt.ml.registry import get_model_type

SHAPE = ModelShape(128, 32)


def smooth_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform inputs; output j is sin(2 x_j) + cos(x_(32+j)): additive and smooth, so that `std`
    keeps its Gaussian process (its default at this size) rather than ridge regression."""
    inputs = np.random.default_rng(seed).uniform(-1.0, 1.0, (rows, SHAPE.in_size))
    out = SHAPE.out_size
    targets = np.sin(2.0 * inputs[:, :out]) + np.cos(inputs[:, out : 2 * out])
    return inputs.astype(np.float32), targets.astype(np.float32)


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def median_ms(predictor: Predictor, inputs: np.ndarray, device: str, repeats: int) -> float:
    for _ in range(2):  # warm-up: CUDA context, kernels, allocator
        predictor.predict(inputs)
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        predictor.predict(inputs)
        synchronize(device)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--train-rows", type=int, default=300)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per timed predict")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--max-train-seconds", type=float, default=60.0)
    parser.add_argument("--rtol", type=float, default=1e-4)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("torch sees no CUDA device")
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}")
    if args.device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}")

    std = get_model_type("std")
    inputs, targets = smooth_data(args.train_rows, seed=0)
    run = std.start_training(SHAPE, inputs, targets, start=None, seed=1, device=args.device)
    started = time.perf_counter()
    progress = run.step()
    while not progress.is_converged and time.perf_counter() - started < args.max_train_seconds:
        progress = run.step()
    synchronize(args.device)
    print(
        f"trained std on {args.device}: {progress.steps} steps in "
        f"{time.perf_counter() - started:.1f} s, converged={progress.is_converged}, "
        f"chosen={getattr(run, 'chosen_kind', None)}, val_loss={progress.val_loss}"
    )

    checkpoint = run.best().to_bytes()
    on_device = std.load(checkpoint, device=args.device)
    on_cpu = std.load(checkpoint, device="cpu")
    queries, _ = smooth_data(args.rows, seed=2)
    device_ms = median_ms(on_device, queries, args.device, args.repeats)
    cpu_ms = median_ms(on_cpu, queries, "cpu", args.repeats)
    print(f"predict {args.rows} x {SHAPE.in_size}, median of {args.repeats}:")
    print(f"  {args.device}: {device_ms:.2f} ms")
    print(f"  cpu: {cpu_ms:.2f} ms")
    print(f"  cpu / {args.device}: {cpu_ms / device_ms:.2f}x")

    from_device, from_cpu = on_device.predict(queries), on_cpu.predict(queries)
    scale = float(np.abs(from_cpu).max())
    if not np.all(np.isfinite(from_device)):
        print("FAIL: the GPU answered non-finite values")
        return 1
    if isinstance(on_cpu, GpPredictor):
        exact = float64_posterior_mean(on_cpu, queries)
        device_error = float(np.abs(from_device - exact).max()) / scale
        cpu_error = float(np.abs(from_cpu - exact).max()) / scale
        print(
            f"largest error / largest prediction against the float64 posterior mean: "
            f"{args.device} {device_error:.2e}, cpu {cpu_error:.2e}"
        )
        is_ok = device_error <= max(2.0 * cpu_error, args.rtol)
    else:
        worst = float(np.abs(from_device - from_cpu).max()) / scale
        print(f"largest difference / largest prediction: {worst:.2e} (allowed {args.rtol:.0e})")
        is_ok = worst <= args.rtol
    print("OK" if is_ok else "FAIL: the GPU's answers are less accurate than the CPU's")
    return 0 if is_ok else 1


def float64_posterior_mean(gp: GpPredictor, inputs: np.ndarray) -> np.ndarray:
    """The posterior mean in float64 on the CPU: the answer both serving paths approximate."""
    lengths = torch.exp(gp.hyper.log_lengths)
    standardised = torch.from_numpy(inputs).to(torch.float64) - gp.inputs_scaler.mean.double()
    scaled = standardised / gp.inputs_scaler.scale.double() / lengths
    signal, _ = variances(gp.hyper)
    kernel = covariance(scaled, gp.rows / lengths, signal, gp.hyper.family)
    mean = kernel @ gp.weights
    result = mean * gp.targets_scaler.scale.double() + gp.targets_scaler.mean.double()
    return np.asarray(result.numpy())


if __name__ == "__main__":
    raise SystemExit(main())
