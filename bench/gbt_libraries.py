"""Which gradient-boosted tree library SGT should use: LightGBM, XGBoost or CatBoost, measured.

Runs each library (and its multi-output strategies) on bench/skinning.py's production-size cases
and on two bench/quality.py tasks, the way an SGT family would: inputs and targets standardised
on the training rows, 20 % of them held out for early stopping, fixed hyper-parameters, 2
threads. Reports held-out RMSE (original units), fit time, rounds kept, time to predict 20,000
rows and one row, serialised model size, and whether CatBoost's own ONNX export takes the model.
scikit-learn's HistGradientBoosting and k-nearest neighbours (standardised, distance-weighted;
k = 8 as bench/skinning.py, and k picked on the validation rows) run alongside for reference.
Prints a table and writes a JSON report. Offline; docs/gbt_choice.md reads the figures.

Imports the case builders of bench/skinning.py and bench/quality.py; it owns no generator.

    .venv/bin/python bench/gbt_libraries.py [--cases v5k,diabetes] [--candidates lgbm,cat_multi]
                                            [--quick] [--out PATH]
"""

from __future__ import annotations

import os

# libgomp's threads spin while they wait; on a shared or busy machine that made LightGBM and
# XGBoost 2 threads 20-25x slower than 1 here (docs/gbt_choice.md). Set before any library loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import catboost  # noqa: E402
import lightgbm  # noqa: E402
import numpy as np  # noqa: E402
import xgboost  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402
from sklearn.neighbors import KNeighborsRegressor  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import skinning  # noqa: E402
from quality import Task, diabetes_task, friedman_task, git_commit  # noqa: E402

# One setting for every library, so that the comparison is of the libraries, not of tuning:
# SGT would ship fixed settings too and let validation loss stop the rounds.
LEARNING_RATE = 0.1
MAX_ROUNDS = 2000
PATIENCE = 50  # rounds without a better validation loss before stopping
DEPTH = 6  # XGBoost and CatBoost; LightGBM grows leaf-wise to LEAVES leaves
LEAVES = 31
MIN_LEAF_ROWS = 20
VALIDATION_SHARE = 0.2
PREDICT_ROWS = 20_000
KNN_CHOICES = (2, 4, 8, 16, 32)

CANDIDATES = ["lgbm", "xgb_tree", "xgb_multi", "cat_multi", "hgb", "knn8", "knn_val"]
SKINNING_CASES = list(skinning.CASES)
QUALITY_CASES = ["friedman1_1000", "diabetes"]
CASES = SKINNING_CASES + QUALITY_CASES
# CatBoost's MultiRMSE needs 2 outputs or more; with one output it is plain RMSE.


def load_case(name: str, quick: bool) -> Task:
    if name in skinning.CASES:
        return skinning.case_task(name, skinning.CASES[name], quick)
    if name == "friedman1_1000":
        return friedman_task(name, make_friedman1, 1000, 3, 1.0)
    if name == "diabetes":
        return diabetes_task()
    raise ValueError(f"unknown case {name}")


class Scaled:
    """Standardisation of inputs and targets on the training rows, as SGT's families do."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        self.x_mean, self.x_scale = inputs.mean(0), np.where(inputs.std(0) > 0, inputs.std(0), 1)
        self.y_mean, self.y_scale = targets.mean(0), np.where(targets.std(0) > 0, targets.std(0), 1)

    def x(self, inputs: np.ndarray) -> np.ndarray:
        return ((inputs - self.x_mean) / self.x_scale).astype(np.float32)

    def y(self, targets: np.ndarray) -> np.ndarray:
        return ((targets - self.y_mean) / self.y_scale).astype(np.float32)

    def y_back(self, scaled: np.ndarray) -> np.ndarray:
        return scaled.reshape(len(scaled), -1) * self.y_scale + self.y_mean


# --- candidates: each fits on standardised (train, validation) and returns a Fitted -------------


class Fitted:
    def __init__(
        self, predict: Callable[[np.ndarray], np.ndarray], size: int, rounds: Any, **notes: Any
    ) -> None:
        self.predict, self.size, self.rounds, self.notes = predict, size, rounds, notes


def fit_lgbm(
    xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int
) -> Fitted:
    """One booster per output, each stopped on its own validation loss."""
    params = {
        "objective": "regression",
        "learning_rate": LEARNING_RATE,
        "num_leaves": LEAVES,
        "min_data_in_leaf": MIN_LEAF_ROWS,
        "num_threads": threads,
        "verbosity": -1,
        "seed": 0,
    }
    boosters = []
    for column in range(yt.shape[1]):
        train = lightgbm.Dataset(xt, np.ascontiguousarray(yt[:, column]))
        valid = lightgbm.Dataset(xv, np.ascontiguousarray(yv[:, column]), reference=train)
        boosters.append(
            lightgbm.train(
                params,
                train,
                MAX_ROUNDS,
                valid_sets=[valid],
                callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
            )
        )

    def predict(x: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [b.predict(x, num_iteration=b.best_iteration, num_threads=threads) for b in boosters]
        )

    size = sum(len(b.model_to_string(num_iteration=b.best_iteration)) for b in boosters)
    return Fitted(predict, size, [b.best_iteration for b in boosters])


def fit_xgb(strategy: str) -> Callable[..., Fitted]:
    def fit(xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int) -> Fitted:
        """One booster for every output; `strategy` says whether a tree holds one output or all."""
        train = xgboost.QuantileDMatrix(xt, yt)
        valid = xgboost.QuantileDMatrix(xv, yv, ref=train)
        params = {
            "tree_method": "hist",
            "learning_rate": LEARNING_RATE,
            "max_depth": DEPTH,
            "min_child_weight": 1.0,
            "nthread": threads,
            "seed": 0,
            "eval_metric": "rmse",
            "multi_strategy": strategy,
        }
        booster = xgboost.train(
            params,
            train,
            MAX_ROUNDS,
            evals=[(valid, "valid")],
            early_stopping_rounds=PATIENCE,
            verbose_eval=False,
        )
        kept = booster[: booster.best_iteration + 1]
        kept.set_param({"nthread": threads})
        return Fitted(
            lambda x: kept.inplace_predict(x), len(kept.save_raw("ubj")), booster.best_iteration + 1
        )

    return fit


def fit_catboost(
    xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int
) -> Fitted:
    """One model for every output (MultiRMSE: each oblivious tree holds a leaf vector)."""
    model = catboost.CatBoostRegressor(
        loss_function="MultiRMSE" if yt.shape[1] > 1 else "RMSE",
        iterations=MAX_ROUNDS,
        learning_rate=LEARNING_RATE,
        depth=DEPTH,
        min_data_in_leaf=MIN_LEAF_ROWS,
        thread_count=threads,
        random_seed=0,
        od_type="Iter",
        od_wait=PATIENCE,
        use_best_model=True,
        verbose=False,
        allow_writing_files=False,
    )
    model.fit(
        xt, yt if yt.shape[1] > 1 else yt[:, 0], eval_set=(xv, yv if yv.shape[1] > 1 else yv[:, 0])
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model"
        model.save_model(str(path))
        size = path.stat().st_size
        try:
            model.save_model(str(path) + ".onnx", format="onnx")
            onnx = f"ok, {Path(str(path) + '.onnx').stat().st_size} bytes"
        except Exception as error:  # noqa: BLE001 - the message is the figure
            onnx = f"refused: {str(error).splitlines()[0][:120]}"
    return Fitted(model.predict, size, model.get_best_iteration() + 1, catboost_onnx=onnx)


def fit_hgb(xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int) -> Fitted:
    """bench/skinning.py's reference: scikit-learn defaults, one model per output."""
    model = skinning.baseline_model("hgb")
    model.fit(np.concatenate([xt, xv]), np.concatenate([yt, yv]))
    rounds = [estimator.n_iter_ for estimator in model.estimators_]
    size = len(__import__("pickle").dumps(model))
    return Fitted(model.predict, size, rounds)


def knn(neighbours: int, x: np.ndarray, y: np.ndarray) -> KNeighborsRegressor:
    return KNeighborsRegressor(n_neighbors=neighbours, weights="distance").fit(x, y)


def fit_knn8(
    xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int
) -> Fitted:
    x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])
    return Fitted(knn(skinning.KNN_NEIGHBOURS, x, y).predict, x.nbytes + y.nbytes, None)


def fit_knn_val(
    xt: np.ndarray, yt: np.ndarray, xv: np.ndarray, yv: np.ndarray, threads: int
) -> Fitted:
    """k picked by validation loss, then refitted on every training row."""
    losses = {k: float(((knn(k, xt, yt).predict(xv) - yv) ** 2).mean()) for k in KNN_CHOICES}
    best = min(losses, key=losses.__getitem__)
    x, y = np.concatenate([xt, xv]), np.concatenate([yt, yv])
    return Fitted(knn(best, x, y).predict, x.nbytes + y.nbytes, None, k=best)


FITTERS: dict[str, Callable[..., Fitted]] = {
    "lgbm": fit_lgbm,
    "xgb_tree": fit_xgb("one_output_per_tree"),
    "xgb_multi": fit_xgb("multi_output_tree"),
    "cat_multi": fit_catboost,
    "hgb": fit_hgb,
    "knn8": fit_knn8,
    "knn_val": fit_knn_val,
}


# --- one run ------------------------------------------------------------------------------------


def validation_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(rows)
    held = max(1, int(rows * VALIDATION_SHARE))
    return order[held:], order[:held]


def timed_predict(fitted: Fitted, scaled: Scaled, inputs: np.ndarray) -> tuple[float, float]:
    """Seconds to predict PREDICT_ROWS rows in one call, and the median for a single row."""
    many = np.resize(inputs, (PREDICT_ROWS, inputs.shape[1]))
    began = time.perf_counter()
    scaled.y_back(np.asarray(fitted.predict(scaled.x(many))))
    bulk = time.perf_counter() - began
    singles = []
    for row in range(30):
        began = time.perf_counter()
        scaled.y_back(np.asarray(fitted.predict(scaled.x(inputs[row % len(inputs)][None]))))
        singles.append(time.perf_counter() - began)
    return bulk, statistics.median(singles)


def run(task: Task, name: str, threads: int, seed: int) -> dict[str, Any]:
    scaled = Scaled(task.train_inputs, task.train_targets)
    x, y = scaled.x(task.train_inputs), scaled.y(task.train_targets)
    fit_rows, held_rows = validation_split(len(x), seed)
    began = time.perf_counter()
    fitted = FITTERS[name](x[fit_rows], y[fit_rows], x[held_rows], y[held_rows], threads)
    fit_seconds = time.perf_counter() - began
    predictions = scaled.y_back(np.asarray(fitted.predict(scaled.x(task.test_inputs))))
    errors = predictions - task.test_targets
    bulk, single = timed_predict(fitted, scaled, task.test_inputs)
    rounds = fitted.rounds
    row = {
        "case": task.name,
        "candidate": name,
        "n_train": len(x),
        "n_inputs": x.shape[1],
        "n_outputs": y.shape[1],
        "rmse": float(np.sqrt((errors**2).mean())),
        "max_abs": float(np.abs(errors).max()),
        "fit_seconds": fit_seconds,
        "predict_20k_seconds": bulk,
        "predict_1_row_ms": single * 1000,
        "model_bytes": fitted.size,
        "rounds": rounds,
        "rounds_total": sum(rounds) if isinstance(rounds, list) else rounds,
        **fitted.notes,
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':<15} {'rows':>6} {'in>out':>7} {'candidate':<10} {'rmse':>8} {'vs best':>7} "
        f"{'fit s':>7} {'rounds':>7} {'pred 20k s':>10} {'1 row ms':>8} {'size kB':>8}"
    )
    print(header)
    print("-" * len(header))
    best = {}
    for row in rows:
        best[row["case"]] = min(best.get(row["case"], np.inf), row["rmse"])
    for row in rows:
        rounds = row["rounds_total"] if row["rounds_total"] is not None else "-"
        print(
            f"{row['case']:<15} {row['n_train']:>6} {row['n_inputs']:>3}>{row['n_outputs']:<3} "
            f"{row['candidate']:<10} {row['rmse']:>8.4f} {row['rmse'] / best[row['case']]:>7.2f} "
            f"{row['fit_seconds']:>7.1f} {rounds!s:>7} {row['predict_20k_seconds']:>10.3f} "
            f"{row['predict_1_row_ms']:>8.2f} {row['model_bytes'] / 1000:>8.0f}"
        )


def selected(option: str, known: list[str]) -> list[str]:
    names = [name for name in option.split(",") if name]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)}; expected some of {', '.join(known)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--quick", action="store_true", help="small skinning meshes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/gbt_libraries.json")
    args = parser.parse_args()
    cases, candidates = selected(args.cases, CASES), selected(args.candidates, CANDIDATES)
    commit = git_commit()
    load_before = os.getloadavg()
    rows = []
    with threadpool_limits(limits=args.threads):
        for case in cases:
            task = load_case(case, args.quick)
            rows.extend(run(task, name, args.threads, args.seed) for name in candidates)
    print_table(rows)
    report = {
        "commit": commit,
        "threads": args.threads,
        "quick": args.quick,
        "settings": {
            "learning_rate": LEARNING_RATE,
            "max_rounds": MAX_ROUNDS,
            "patience": PATIENCE,
            "depth": DEPTH,
            "leaves": LEAVES,
            "min_leaf_rows": MIN_LEAF_ROWS,
            "validation_share": VALIDATION_SHARE,
        },
        "versions": {
            "lightgbm": lightgbm.__version__,
            "xgboost": xgboost.__version__,
            "catboost": catboost.__version__,
        },
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nreport written to {args.out} (commit {commit})")


if __name__ == "__main__":
    main()
