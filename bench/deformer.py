"""Corrective shapes at production size: joint rotations in, every vertex offset out.

For each input case (A: 3 joints, axis-angle, 9 inputs; B: 20 joints, 6-D encoding, 120 inputs)
and each mesh size V (3 V outputs), trains on 200 poses of bench/deformer_data.py and tests on
500 others:

- SGT types through a real `sgt serve` (default settings, a temporary data directory) with its
  trainer as a separate `sgt worker` process of `--threads` torch threads: create (a refusal is
  recorded with the server's message, not raised), binary upload, wait for `converged`, predict
  the test poses over the binary path, one-pose latency over JSON and binary, the stored
  checkpoint's size, the worker's peak RSS;
- baselines in a spawned child process each, killed at the budget: the mean; PCA + ridge; kernel
  ridge and a GP on the same principal-shape coefficients (docs/deformer.md says how each is
  tuned); the child's peak RSS while fitting and predicting, its pickled size as "checkpoint".

Prints a table and the verdict against the targets of issue 18; writes JSON.

    .venv/bin/python bench/deformer.py --quick
    .venv/bin/python bench/deformer.py --vertices 1000,10000,50000 --cases A,B --budget 300
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from deformer_data import CASES, DeformerTask, make_case
from serve_support import (
    CREDENTIALS,
    Client,
    Server,
    closed_loop,
    decode_array_object,
    reset_peak_rss,
    rss_bytes,
    run_body,
    upload_body,
)
from sklearn.base import BaseEstimator, RegressorMixin

RUN, UPLOAD = "/public/run_sgt_model", "/public/upload_sgt_model_train_data"
SGT_TYPES = ["std", "gp", "mlp", "linear"]
BASELINES = ["mean", "pca_ridge", "krr", "gp"]
# Principal shapes the PCA baselines keep: this share of the training offsets' variance.
PCA_VARIANCE = 0.9999
# The GP baseline has one length scale per input up to this width, one for all above it.
ARD_MAX_INPUTS = 32
# Floats per prediction request when scoring the test poses (a ~40 MB binary body).
REQUEST_FLOATS = 10_000_000
TARGET_V = 50_000
TARGET_SECONDS, TARGET_PEAK_BYTES = 180.0, 4e9
TARGET_BINARY_MS, TARGET_JSON_MS = 5.0, 30.0


def scores(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """RMSE over every offset; the largest Euclidean error of one vertex in one pose."""
    errors = predictions.astype(np.float64) - targets
    per_vertex = np.linalg.norm(errors.reshape(len(errors), -1, 3), axis=2)
    return {"rmse": float(np.sqrt((errors**2).mean())), "max_vertex_error": float(per_vertex.max())}


# Baselines: each in a child process ----------------------------------------------------------


def baseline_model(name: str, width: int, quick: bool) -> Any:
    from sklearn.decomposition import PCA
    from sklearn.dummy import DummyRegressor
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def on_principal_shapes(regressor: Any) -> Any:
        # Offsets share one unit, so they are centred, not standardised per column: scaling
        # would blow up the vertices far from every joint, which barely move.
        from sklearn.compose import TransformedTargetRegressor

        return TransformedTargetRegressor(
            make_pipeline(StandardScaler(), regressor),
            transformer=PCA(n_components=PCA_VARIANCE, svd_solver="full"),
            check_inverse=False,
        )

    if name == "mean":
        return DummyRegressor(strategy="mean")
    if name == "pca_ridge":
        return on_principal_shapes(RidgeCV(alphas=np.logspace(-4, 3, 15)))
    if name == "krr":
        grid = {
            "alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            "gamma": [g / width for g in (0.03, 0.1, 0.3, 1.0, 3.0)],
        }
        krr = KernelRidge(kernel="rbf", alpha=1e-2, gamma=0.3 / width)
        folds = KFold(n_splits=5, shuffle=True, random_state=0)
        scoring = "neg_mean_squared_error"
        tuned = krr if quick else GridSearchCV(krr, grid, cv=folds, scoring=scoring)
        return on_principal_shapes(tuned)
    if name == "gp":
        return on_principal_shapes(EvidenceChosenGP(width, restarts=0 if quick else 2))
    raise ValueError(f"unknown baseline {name}")


class EvidenceChosenGP(BaseEstimator, RegressorMixin):  # type: ignore[misc]
    """One GP over every principal-shape coefficient (one kernel shared by all outputs): two
    kernel structures, RBF + noise and RBF + linear + noise, each with its hyperparameters at
    the best of 1 + `restarts` optimisations of the log marginal likelihood; the structure of
    the higher likelihood is kept. "Tuned" means this: no validation split, the evidence."""

    def __init__(self, width: int, restarts: int) -> None:
        self.width, self.restarts = width, restarts

    def kernels(self) -> list[Any]:
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, DotProduct, WhiteKernel

        # Length scales start at the typical distance of standardised inputs and stay above half
        # of it: shorter, every kernel value between poses is ~0, the likelihood has a flat
        # optimum there ("all noise", the mean's answer), and the optimiser found it. One scale
        # per input up to ARD_MAX_INPUTS; past it one for all (122 hyperparameters' worth of
        # gradients over ~180 outputs did not fit the budget on 2 cores).
        start = np.sqrt(self.width)
        scales = np.full(self.width, start) if self.width <= ARD_MAX_INPUTS else start
        smooth = ConstantKernel(1e-2, (1e-6, 1e3)) * RBF(scales, (0.5 * start, 1e3))
        noise = WhiteKernel(1e-4, (1e-9, 1e-1))
        linear = ConstantKernel(1e-4, (1e-8, 1e2)) * DotProduct(1.0, (1e-3, 1e3))
        return [smooth + noise, smooth + linear + noise]

    def fit(self, inputs: np.ndarray, targets: np.ndarray) -> EvidenceChosenGP:
        from sklearn.gaussian_process import GaussianProcessRegressor

        fits = [
            GaussianProcessRegressor(
                kernel, normalize_y=False, n_restarts_optimizer=self.restarts, random_state=0
            ).fit(inputs, targets)
            for kernel in self.kernels()
        ]
        self.chosen = max(fits, key=lambda fit: float(fit.log_marginal_likelihood_value_))
        self.kernel_ = self.chosen.kernel_
        return self

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return np.asarray(self.chosen.predict(inputs))


def _baseline_child(
    name: str, task_path: str, threads: int, quick: bool, answer: Connection
) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    arrays = np.load(task_path)
    x, y = arrays["train_inputs"], arrays["train_targets"]
    test_x, test_y = arrays["test_inputs"], arrays["test_targets"]
    can_peak = reset_peak_rss([os.getpid()])
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = baseline_model(name, x.shape[1], quick)
        began = time.perf_counter()
        model.fit(x, y)
        fit_seconds = time.perf_counter() - began
        predictions = np.asarray(model.predict(test_x), dtype=np.float32)
        one_pose = [_timed(lambda i=i: model.predict(test_x[i : i + 1])) for i in range(30)]
    peak = rss_bytes([os.getpid()], "VmHWM")
    inner = getattr(model, "regressor_", None)
    components = getattr(getattr(model, "transformer_", None), "n_components_", None)
    searched = getattr(inner[-1], "best_params_", None) if inner is not None else None
    fitted_kernel = getattr(inner[-1], "kernel_", None) if inner is not None else None
    answer.send(
        {
            **scores(predictions.reshape(test_y.shape), test_y),
            "seconds": fit_seconds,
            "converged": True,
            "checkpoint_bytes": len(pickle.dumps(model)),
            "peak_rss_bytes": peak if can_peak else None,
            "peak_memory_kind": "child VmHWM during fit+predict, data arrays included",
            "in_process_p50_ms": float(np.median(one_pose)) * 1e3,
            "components": None if components is None else int(components),
            "tuned": searched or (str(fitted_kernel) if fitted_kernel is not None else None),
        }
    )


def _timed(action: Any) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def run_baseline(name: str, task_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_baseline_child, args=(name, str(task_path), args.threads, args.quick, sender)
    )
    began = time.perf_counter()
    child.start()
    sender.close()
    result: dict[str, Any]
    if receiver.poll(args.budget):
        try:
            result = receiver.recv()
        except EOFError:
            result = {"outcome": f"child died (exit code {child.exitcode})"}
    else:
        result = {"outcome": f"did not finish within the {args.budget:.0f} s budget"}
    child.join(timeout=30 if "outcome" not in result else 0)
    if child.is_alive():
        child.terminate()
        child.join()
    result.setdefault("outcome", "finished")
    result["wall_seconds"] = time.perf_counter() - began
    return {"contender": f"baseline:{name}", **result}


# SGT: through a real `sgt serve` --------------------------------------------------------------


def run_sgt(
    server: Server, client: Client, model_type: str, task: DeformerTask, args: argparse.Namespace
) -> dict[str, Any]:
    name = f"deform-{model_type}"
    width, out = task.train_inputs.shape[1], task.train_targets.shape[1]
    row: dict[str, Any] = {"contender": f"sgt:{model_type}"}
    status, content = client.post(
        "/public/create_sgt_model",
        orjson.dumps(
            {
                **CREDENTIALS,
                "name": name,
                "model_type": model_type,
                "in_size": width,
                "out_size": out,
            }
        ),
    )
    if status != 200:
        body = orjson.loads(content)
        return {**row, "outcome": f"refused at create: {body['exception']}: {body['message']}"}
    pids = server.trainer_pids()
    can_peak = reset_peak_rss(pids)
    rss_before = rss_bytes(pids)
    body = upload_body(name, task.train_inputs, task.train_targets, binary=True)
    upload_seconds = _timed(lambda: client.post_ok(UPLOAD, body))
    began = time.perf_counter()
    state = client.wait_until_converged(name, args.budget)
    seconds = time.perf_counter() - began
    converged = state.get("state") == "converged"
    peak = rss_bytes(pids, "VmHWM") if can_peak else None
    # A trainer still at work would share the two cores with the API: pause it while the
    # server answers, so latency measures serving alone (the row says when this happened).
    for pid in pids if not converged else []:
        os.kill(pid, signal.SIGSTOP)
    try:
        predictions = predict_over_binary(client, name, task.test_inputs, out)
        latency = _latency(server.port, name, task.test_inputs[:1], args.latency_seconds)
    finally:
        for pid in pids if not converged else []:
            os.kill(pid, signal.SIGCONT)
    checkpoint = server.checkpoint_bytes(name)
    client.call("/public/delete_sgt_model", {**CREDENTIALS, "name": name})
    return {
        **row,
        "outcome": "converged" if converged else f"not converged within {args.budget:.0f} s",
        **scores(predictions, task.test_targets),
        "seconds": seconds,
        "converged": converged,
        "steps": state.get("steps"),
        "upload_seconds": upload_seconds,
        "checkpoint_bytes": checkpoint,
        "peak_rss_bytes": peak,
        "trainer_rss_before_bytes": rss_before,
        "peak_memory_kind": "sgt worker VmHWM from upload to converged",
        "trainer_paused_for_latency": not converged,
        "json_p50_ms": latency["json"],
        "binary_p50_ms": latency["binary"],
    }


def _latency(port: int, name: str, pose: np.ndarray, seconds: float) -> dict[str, float]:
    """One-pose p50 over JSON and over the binary path, one keep-alive client each."""
    return {
        kind: closed_loop(
            port, run_body(name, pose, binary=kind == "binary"), RUN, clients=1, seconds=seconds
        )["p50_ms"]
        for kind in ("json", "binary")
    }


def predict_over_binary(client: Client, name: str, inputs: np.ndarray, out: int) -> np.ndarray:
    chunk = max(1, REQUEST_FLOATS // out)
    parts = []
    for start in range(0, len(inputs), chunk):
        answer = client.post_ok(RUN, run_body(name, inputs[start : start + chunk], binary=True))
        parts.append(decode_array_object(orjson.loads(answer)))
    return np.concatenate(parts)


# One (case, V) cell ---------------------------------------------------------------------------


def run_cell(case: str, vertices: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    began = time.perf_counter()
    task = make_case(case, vertices, seed=args.seed)
    print(f"case {case}, V={vertices:,}: data in {time.perf_counter() - began:.1f} s", flush=True)
    cell = {"case": case, "vertices": vertices, "in_size": task.train_inputs.shape[1]}
    rows: list[dict[str, Any]] = []
    sgt_types = [c.split(":", 1)[1] for c in args.contenders if c.startswith("sgt:")]
    if sgt_types:
        server = Server.start(args.server_env, trainer_nice=0, trainer_threads=args.threads)
        try:
            client = Client(server.port)
            client.add_bench_user()
            for model_type in sgt_types:
                rows.append({**cell, **run_sgt(server, client, model_type, task, args)})
                _progress(rows[-1])
            client.close()
        finally:
            server.stop()
    baselines = [c.split(":", 1)[1] for c in args.contenders if c.startswith("baseline:")]
    with tempfile.TemporaryDirectory(prefix="sgt-deformer-") as folder:
        task_path = Path(folder) / "task.npz"
        np.savez(
            task_path,
            train_inputs=task.train_inputs,
            train_targets=task.train_targets,
            test_inputs=task.test_inputs,
            test_targets=task.test_targets,
        )
        for name in baselines:
            rows.append({**cell, **run_baseline(name, task_path, args)})
            _progress(rows[-1])
    return rows


def _progress(row: dict[str, Any]) -> None:
    print(orjson.dumps(row, option=orjson.OPT_SERIALIZE_NUMPY).decode(), file=sys.stderr)


# Report ---------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    def number(value: Any, scale: float = 1.0, digits: str = ".4g") -> str:
        return "-" if value is None else format(value / scale, digits)

    header = (
        f"{'case':<4} {'V':>7} {'contender':<18} {'rmse':>9} {'max vtx':>8} {'fit s':>7} "
        f"{'ckpt MB':>8} {'peak MB':>8} {'json ms':>8} {'bin ms':>7}  outcome"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:<4} {row['vertices']:>7,} {row['contender']:<18} "
            f"{number(row.get('rmse')):>9} {number(row.get('max_vertex_error'), 1, '.3f'):>8} "
            f"{number(row.get('seconds'), 1, '.1f'):>7} "
            f"{number(row.get('checkpoint_bytes'), 1e6, '.2f'):>8} "
            f"{number(row.get('peak_rss_bytes'), 1e6, '.0f'):>8} "
            f"{number(row.get('json_p50_ms'), 1, '.2f'):>8} "
            f"{number(row.get('binary_p50_ms'), 1, '.2f'):>7}  {row['outcome']}"
        )


def verdict(rows: list[dict[str, Any]], vertices: list[int]) -> dict[str, Any]:
    """Issue 18's targets, judged on what this run measured; a target not measured is unmet."""
    checks: list[dict[str, Any]] = []
    cells = sorted({(row["case"], row["vertices"]) for row in rows})
    for case, size in cells:
        here = [row for row in rows if (row["case"], row["vertices"]) == (case, size)]
        std = next((row for row in here if row["contender"] == "sgt:std"), None)
        finished = [
            row for row in here if row["contender"].startswith("baseline:") and "rmse" in row
        ]
        best = min(finished, key=lambda row: row["rmse"], default=None)
        label = f"{case} V={size:,}"
        has_std = std is not None and "rmse" in std
        detail = std["outcome"] if std is not None and not has_std else "std not run"
        if has_std and best is not None:
            detail = (
                f"std {std['rmse']:.4g} vs {best['contender']} {best['rmse']:.4g} "
                f"({std['rmse'] / best['rmse'] - 1:+.1%})"
            )
        checks.append(
            {
                "target": f"{label}: std RMSE at or below the best finished baseline",
                "met": has_std and best is not None and std["rmse"] <= best["rmse"],
                "detail": detail if best is not None else "no baseline finished",
            }
        )
        if size != TARGET_V:
            continue
        seconds = std.get("seconds") if has_std else None
        peak = std.get("peak_rss_bytes") if has_std else None
        converged = has_std and std["converged"] and seconds is not None
        checks.append(
            {
                "target": f"{label}: converged in {TARGET_SECONDS:.0f} s, trainer peak < 4 GB",
                "met": bool(converged and seconds <= TARGET_SECONDS)
                and peak is not None
                and peak < TARGET_PEAK_BYTES,
                "detail": f"{seconds:.1f} s, peak {peak / 1e9:.2f} GB"
                if converged and peak is not None
                else detail,
            }
        )
        binary = std.get("binary_p50_ms") if has_std else None
        json_ms = std.get("json_p50_ms") if has_std else None
        checks.append(
            {
                "target": f"{label}: one-pose p50 < {TARGET_BINARY_MS:.0f} ms binary, "
                f"< {TARGET_JSON_MS:.0f} ms JSON",
                "met": binary is not None
                and json_ms is not None
                and binary < TARGET_BINARY_MS
                and json_ms < TARGET_JSON_MS,
                "detail": f"binary {binary:.2f} ms, JSON {json_ms:.2f} ms"
                if binary is not None and json_ms is not None
                else detail,
            }
        )
    if TARGET_V not in vertices:
        checks.append({"target": f"V={TARGET_V:,} targets", "met": False, "detail": "not measured"})
    return {"checks": checks, "is_met": all(check["met"] for check in checks)}


def print_verdict(result: dict[str, Any]) -> None:
    print("\ntargets (issue 18)")
    for check in result["checks"]:
        print(f"  {'met    ' if check['met'] else 'NOT MET'}  {check['target']}: {check['detail']}")
    print(f"overall: {'MET' if result['is_met'] else 'NOT MET'}")


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "bench"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vertices", default="1000,10000,50000", help="mesh sizes V")
    parser.add_argument("--cases", default=",".join(CASES), help="A (3 joints), B (20 joints)")
    parser.add_argument(
        "--contenders",
        default=",".join([f"sgt:{t}" for t in SGT_TYPES] + [f"baseline:{b}" for b in BASELINES]),
        help="sgt:TYPE and baseline:NAME, comma separated",
    )
    parser.add_argument("--budget", type=float, default=300.0, help="wall seconds per contender")
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2, help="trainer / baseline threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="V=1,000, 60 s budget, untuned")
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="NAME=VALUE", help="for sgt serve"
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "deformer.json"))
    args = parser.parse_args()
    if args.quick:
        args.vertices, args.budget, args.latency_seconds = "1000", 60.0, 1.0
    args.vertices = [int(v) for v in args.vertices.split(",") if v]
    args.cases = [c for c in args.cases.split(",") if c]
    args.contenders = [c for c in args.contenders.split(",") if c]
    args.server_env = dict(item.split("=", 1) for item in args.server_env)
    return args


def main() -> None:
    args = parse_args()
    commit = git_commit()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    for size in args.vertices:
        for case in args.cases:
            rows += run_cell(case, size, args)
            # Written after every cell, so that a long run killed late keeps what it measured.
            write_report(args, commit, load_before, rows)
    print_table(rows)
    print_verdict(verdict(rows, args.vertices))
    print(f"\nwritten to {args.out} (commit {commit})")


def write_report(
    args: argparse.Namespace, commit: str, load_before: tuple[float, ...], rows: list[Any]
) -> None:
    report = {
        "commit": commit,
        "settings": {k: v for k, v in vars(args).items()},
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rows": rows,
        "target": verdict(rows, args.vertices),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(
        orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )


if __name__ == "__main__":
    main()
