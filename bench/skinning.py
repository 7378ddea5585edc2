"""Skin weights at production size: SGT's model types against scikit-learn baselines.

Each case trains on one skinned mesh in one pose and predicts another mesh of the same rig at
another resolution and in another pose (bench/skinning_data.py builds both). Inputs are the
plug-in's per-vertex features, without or with one neighbour-smoothing pass; targets are the
17 joint weights. SGT types are trained in-process through bench/quality.py's service path and
stopped at the per-contender budget if they have not converged by then; scikit-learn baselines
run to their own stopping rules. Prints a table (and the plug-in's post-processing, clamp below
0.03 and renormalise, as reference figures) and writes a JSON report. Offline; docs/skinning.md.

    .venv/bin/python bench/skinning.py [--budget 120] [--cases v5k,v20k_smooth]
                                       [--contenders sgt:std,hgb,knn] [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skinning_data  # noqa: E402
from quality import (  # noqa: E402
    DEFAULT_TYPES,
    Task,
    as_task,
    git_commit,
    standardised,
    train_sgt_run,
)

from sgt.ml.registry import get_model_type  # noqa: E402
from sgt.ml.types.weights import WeightsModelType, WeightsPredictor  # noqa: E402

BASELINES = ["hgb", "knn", "mlp", "ridge", "mean"]
# `weights` is `std` projected onto the simplex; `weights:4` with at most 4 influences a vertex.
WEIGHTS_CONTENDERS = ["sgt:weights", "sgt:weights:4"]
CONTENDERS = [f"sgt:{name}" for name in DEFAULT_TYPES] + WEIGHTS_CONTENDERS + BASELINES
# A predicted weight below this counts as negative (the threshold).
NEGATIVE_BELOW = -0.01
# The plug-in sets weights below this to zero, then renormalises each row.
PLUGIN_CLAMP = 0.03
KNN_NEIGHBOURS = 8


@dataclass(frozen=True)
class Case:
    train_vertices: int
    test_vertices: int
    smoothing_passes: int
    train_pose_seed: int = 1
    test_pose_seed: int = 2


CASES = {
    "v5k": Case(5000, 10000, 0),
    "v5k_smooth": Case(5000, 10000, 1),
    "v20k": Case(20000, 10000, 0),
    "v20k_smooth": Case(20000, 10000, 1),
}
# --quick: the same cases on small meshes, for a smoke run of the whole path.
QUICK_VERTICES = {5000: 800, 20000: 1500, 10000: 1200}


@functools.cache
def mesh(vertices: int, pose_seed: int) -> skinning_data.SkinnedMesh:
    return skinning_data.skinned_mesh(
        skinning_data.biped_skeleton(), vertices=vertices, pose_seed=pose_seed
    )


def case_task(name: str, case: Case, quick: bool) -> Task:
    def size(vertices: int) -> int:
        return QUICK_VERTICES[vertices] if quick else vertices

    train = mesh(size(case.train_vertices), case.train_pose_seed)
    test = mesh(size(case.test_vertices), case.test_pose_seed)
    return as_task(
        name,
        skinning_data.plugin_features(train, case.smoothing_passes),
        train.weights,
        skinning_data.plugin_features(test, case.smoothing_passes),
        test.weights,
    )


# --- scoring ------------------------------------------------------------------------------------


def weight_scores(targets: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """RMSE over every weight, the largest error, the share of weights below NEGATIVE_BELOW and
    the mean distance of a row's sum from 1."""
    errors = predictions.astype(np.float64) - targets
    return {
        "rmse": float(np.sqrt((errors**2).mean())),
        "max_abs": float(np.abs(errors).max()),
        "negative_share": float((predictions < NEGATIVE_BELOW).mean()),
        "row_sum_error": float(np.abs(predictions.sum(axis=1) - 1.0).mean()),
        # Rows that are not skin weights: a negative entry or a sum off 1 by more than 1e-6.
        "invalid_rows": int(
            ((predictions < 0.0).any(axis=1) | (np.abs(predictions.sum(axis=1) - 1.0) > 1e-6)).sum()
        ),
    }


def plugin_postprocessed(predictions: np.ndarray) -> np.ndarray:
    """What the plug-in sets: weights below PLUGIN_CLAMP zeroed, rows renormalised; a row left
    empty gets all its weight on its largest prediction."""
    kept = np.where(predictions < PLUGIN_CLAMP, 0.0, predictions.astype(np.float64))
    sums = kept.sum(axis=1)
    empty = sums <= 0.0
    kept[empty, predictions[empty].argmax(axis=1)] = 1.0
    sums[empty] = 1.0
    return kept / sums[:, None]


# --- contenders ---------------------------------------------------------------------------------


def baseline_model(name: str) -> Any:
    if name == "hgb":
        return MultiOutputRegressor(HistGradientBoostingRegressor(random_state=0))
    if name == "knn":
        return make_pipeline(
            StandardScaler(), KNeighborsRegressor(n_neighbors=KNN_NEIGHBOURS, weights="distance")
        )
    if name == "mlp":
        return standardised(
            MLPRegressor(hidden_layer_sizes=(128, 128), early_stopping=True, random_state=0)
        )
    if name == "ridge":
        return standardised(Ridge(alpha=1.0))
    if name == "mean":
        return DummyRegressor(strategy="mean")
    raise ValueError(f"unknown baseline {name}")


def fit_baseline(task: Task, name: str) -> tuple[Any, dict[str, Any]]:
    model = baseline_model(name)
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(task.train_inputs, task.train_targets)
    return model, {
        "contender": f"baseline:{name}",
        "seconds": time.perf_counter() - began,
        "converged": True,
    }


# The run of `sgt:std` on the current task, reused by the `weights` contenders: `weights` trains
# exactly what `std` trains (same seed, same steps) and projects its predictions
# (tests/unit/ml/test_weights_type.py checks that identity), so training it again would only
# double the bench's time. Without a `std` row first, they train on their own.
_std_runs: dict[str, tuple[Any, dict[str, Any]]] = {}


def fit_contender(task: Task, name: str, budget: float, seed: int) -> tuple[Any, dict[str, Any]]:
    if name in WEIGHTS_CONTENDERS and task.name in _std_runs:
        std_model, std_figures = _std_runs[task.name]
        weights_type = get_model_type(name[4:])
        assert isinstance(weights_type, WeightsModelType)
        model = WeightsPredictor(std_model, max_influences=weights_type.max_influences)
        return model, {**std_figures, "contender": name, "note": "std's run, projected"}
    if name == "sgt:std":
        _std_runs.clear()
        run, figures = train_sgt_run(task, "std", budget, seed, cap_seconds=budget)
        _std_runs[task.name] = (run.best(), figures)
        return _std_runs[task.name]
    if name.startswith("sgt:"):
        # The budget is both the point of the at-budget figure and the cap.
        run, figures = train_sgt_run(task, name[4:], budget, seed, cap_seconds=budget)
        return run.best(), figures
    return fit_baseline(task, name)


def run_contender(task: Task, name: str, budget: float, seed: int) -> dict[str, Any]:
    model, figures = fit_contender(task, name, budget, seed)
    began = time.perf_counter()
    predictions = np.asarray(model.predict(task.test_inputs), dtype=np.float64)
    predict_seconds = time.perf_counter() - began
    predictions = predictions.reshape(len(task.test_inputs), -1)
    postprocessed = weight_scores(task.test_targets, plugin_postprocessed(predictions))
    row = {
        "contender": figures["contender"],
        **weight_scores(task.test_targets, predictions),
        "fit_seconds": figures["seconds"],
        "converged": figures["converged"],
        "predict_seconds": predict_seconds,
        "plugin_rmse": postprocessed["rmse"],
        "plugin_max_abs": postprocessed["max_abs"],
        "chosen": figures.get("chosen"),
        "steps": figures.get("steps"),
    }
    print(json.dumps({"task": task.name, **row}), file=sys.stderr, flush=True)
    return row


# --- report -------------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':<12} {'train':>6} {'test':>6} {'contender':<15} {'rmse':>8} {'max|err|':>8} "
        f"{'w<-.01':>7} {'|sum-1|':>8} {'invalid':>7} {'fit s':>7} {'pred s':>7}  note"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        note = f"chose {row['chosen']}" if row.get("chosen") else ""
        if not row["converged"]:
            note = (note + " NOT CONVERGED").strip()
        print(
            f"{row['case']:<12} {row['n_train']:>6} {row['n_test']:>6} {row['contender']:<15} "
            f"{row['rmse']:>8.4f} {row['max_abs']:>8.3f} {row['negative_share']:>7.2%} "
            f"{row['row_sum_error']:>8.4f} {row['invalid_rows']:>7} {row['fit_seconds']:>7.1f} "
            f"{row['predict_seconds']:>7.2f}  {note}"
        )


def print_postprocessed(rows: list[dict[str, Any]]) -> None:
    print(
        f"\nreference: after the plug-in's post-processing (weights < {PLUGIN_CLAMP} set to 0, "
        "rows renormalised)"
    )
    header = f"{'case':<12} {'contender':<15} {'rmse':>8} {'max|err|':>8}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:<12} {row['contender']:<15} {row['plugin_rmse']:>8.4f} "
            f"{row['plugin_max_abs']:>8.3f}"
        )


def selected(option: str, known: list[str], what: str) -> list[str]:
    names = [name for name in option.split(",") if name]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(
            f"unknown {what}: {', '.join(unknown)}; expected some of {', '.join(known)}"
        )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budget", type=float, default=120.0, help="wall seconds per SGT type")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--quick", action="store_true", help="small meshes, 15 s budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/skinning.json")
    args = parser.parse_args()
    budget = 15.0 if args.quick and args.budget == 120.0 else args.budget
    cases = selected(args.cases, list(CASES), "case")
    contenders = selected(args.contenders, CONTENDERS, "contender")
    torch.set_num_threads(args.threads)
    commit = git_commit()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    with threadpool_limits(limits=args.threads):
        for case_name in cases:
            task = case_task(case_name, CASES[case_name], args.quick)
            for name in contenders:
                row = run_contender(task, name, budget, args.seed)
                rows.append(
                    {
                        "case": case_name,
                        "n_train": len(task.train_inputs),
                        "n_test": len(task.test_inputs),
                        "n_inputs": task.train_inputs.shape[1],
                        **row,
                    }
                )
    print_table(rows)
    print_postprocessed(rows)
    report = {
        "commit": commit,
        "budget_seconds": budget,
        "quick": args.quick,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cases": {name: asdict(CASES[name]) for name in cases},
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nreport written to {args.out} (commit {commit})")


if __name__ == "__main__":
    main()
