"""ONNX export figures per model type and per family `std` serves: agreement with `predict`, file
size, and onnxruntime's time to predict 20,000 rows.

Each case trains on ROWS rows of a smooth 8 -> 3 function (`std` on fewer, noisy rows too, where
it serves a blend), with the registered configurations (full-size MLPs, 100 trees). Agreement is
over 10,000 rows, half inside the training range and half beyond it:

    max rel  = max |onnx - served| / |served|, over entries with |served| >= 0.1 * size[j]
    max abs  = max |onnx - served| / size[j]          (size[j] = max(1, max |target[:, j]|))
    ok       = |onnx - served| <= 1e-4 |served| + 1e-5 size[j] everywhere (the tests' criterion)

Times are medians of 5 runs of 20,000 rows: onnxruntime's CPU provider on 1 intra-op thread, next
to `predict` in this process (torch on 1 thread).

    .venv/bin/python bench/onnx_export.py            # about a minute
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import numpy as np
import onnxruntime
import torch

from sgt.ml.base import ModelShape, ModelType, Predictor
from sgt.ml.export.registry import export_predictor
from sgt.ml.families.forest import FOREST
from sgt.ml.families.gbt import FAMILY as GBT_FAMILY
from sgt.ml.families.mlp import FAMILY as ENSEMBLE_FAMILY
from sgt.ml.registry import STD, get_model_type

SHAPE = ModelShape(8, 3)


def data(rows: int, *, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, size=(rows, SHAPE.in_size)).astype(np.float32)
    y = np.stack(
        [
            np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2],
            10.0 + 5.0 * np.tanh(x[:, 3] - x[:, 4]),
            x[:, 5:].sum(axis=1) ** 2,
        ],
        axis=1,
    )
    return x, (y + noise * rng.normal(size=y.shape)).astype(np.float32)


def as_weights(targets: np.ndarray) -> np.ndarray:
    """Rows of non-negative values summing to 1, as the `weights` type is trained on."""
    exponent = np.exp(targets - targets.max(axis=1, keepdims=True))
    return (exponent / exponent.sum(axis=1, keepdims=True)).astype(np.float32)


def train(model_type: ModelType, x: np.ndarray, y: np.ndarray) -> Predictor:
    run = model_type.start_training(SHAPE, x, y, start=None, seed=1, device="cpu")
    for _ in range(20_000):
        if run.step().is_converged:
            break
    return run.best()


def median_seconds(call: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def session(content: bytes, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(content, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases: list[tuple[str, ModelType, int, float]] = [
        ("type std", STD, args.rows, 0.05),
        ("type std (blend)", STD, 60, 0.3),
        ("type gp", get_model_type("gp"), args.rows, 0.05),
        ("type linear", get_model_type("linear"), args.rows, 0.05),
        ("type mlp", get_model_type("mlp"), args.rows, 0.05),
        ("family mlp ensemble", ENSEMBLE_FAMILY.model_type, args.rows, 0.05),
        ("type weights", get_model_type("weights"), args.rows, 0.05),
        ("family forest", FOREST, min(args.rows, 150), 0.05),
        ("family gbt", GBT_FAMILY.model_type, max(args.rows, GBT_FAMILY.min_rows), 0.05),
    ]
    print(
        f"{'case':<22}{'serves':<8}{'rows':>6}{'KiB':>9}{'max rel':>10}"
        f"{'max abs':>10}{'ok':>4}{'ort ms':>11}{'predict ms':>12}"
    )
    for label, model_type, rows, noise in cases:
        x, y = data(rows, noise=noise, seed=rows)
        if model_type.name == "weights":
            y = as_weights(y)
        predictor = train(model_type, x, y)
        exported = export_predictor(predictor)
        rng = np.random.default_rng(5)
        probe = np.concatenate(
            [rng.uniform(-1, 1, size=(5000, 8)), rng.uniform(-3, 3, size=(5000, 8))]
        ).astype(np.float32)
        served = predictor.predict(probe)
        onnx_out = session(exported.content, 1).run(None, {"input": probe})[0]
        size = np.maximum(1.0, np.abs(y).max(axis=0))
        difference = np.abs(onnx_out - served)
        large = np.abs(served) >= 0.1 * size
        max_rel = float((difference[large] / np.abs(served[large])).max())
        max_abs = float((difference / size).max())
        is_ok = bool(np.all(difference <= 1e-4 * np.abs(served) + 1e-5 * size))
        rows20k = np.concatenate([probe, probe])
        ort_time = median_seconds(
            functools.partial(session(exported.content, 1).run, None, {"input": rows20k})
        )
        predict_time = median_seconds(functools.partial(predictor.predict, rows20k))
        print(
            f"{label:<22}{predictor.kind:<8}{rows:>6}"
            f"{len(exported.content) / 1024:>9.1f}"
            f"{max_rel:>10.1e}{max_abs:>10.1e}{'yes' if is_ok else 'NO':>4}"
            f"{1000 * ort_time:>11.1f}{1000 * predict_time:>12.1f}"
        )


if __name__ == "__main__":
    main()
