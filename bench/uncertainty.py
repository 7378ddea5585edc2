"""Calibrated uncertainty and active learning (issue 17; docs/uncertainty.md).

Three parts, each printed as a table:

1. coverage: on every task of bench/quality.py and every case of bench/skinning.py, the share of
   held-out targets inside mean ± 1.645·std of a trained `std` model (target: 85-95 %), and the
   mean interval width relative to the targets' standard deviation; each skinning case also on
   a fifth of its training mesh's vertices held out (`_same_pose`), rows like the training rows;
2. latency at 20,000 rows (target: return_std at most 2x the plain run): the request a client
   waits for through `sgt serve` (JSON and binary; the issue's "run", and the verdict), and
   `predict` vs `predict_with_std` + `out_of_range` in process beside it (the model alone),
   in bench/uncertainty_latency.py;
3. active learning: from 20 random training rows, rounds of 10 rows chosen by `suggest_rows`
   from a pool vs 10 random ones, up to 120 rows; the median held-out RMSE over the seeds at 120
   rows, suggest / random, against the test rows' noise-free targets (target: <= 0.85 on at
   least 3 of friedman1, friedman2, friedman3 and the corrective-shape task), with the curves.

    python bench/uncertainty.py                       # everything (long: 2-3 hours on 2 cores)
    python bench/uncertainty.py --quick               # small skinning meshes, 2 seeds, short caps
    python bench/uncertainty.py --parts coverage --tasks friedman2,skinning_v5k
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_friedman1, make_friedman2, make_friedman3
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deformer_data  # noqa: E402
import skinning  # noqa: E402
from quality import TASKS, Task, as_task, git_commit, train_sgt_run  # noqa: E402
from uncertainty_latency import run_latency, run_served_latency  # noqa: E402

from sgt.ml.numerics.calibration import Z_90  # noqa: E402

COVERAGE_TASKS = [
    "diabetes",
    "friedman1_200",
    "friedman1_1000",
    "friedman2",
    "friedman3",
    "linnerud_x20",
    "skinning",
]
COVERAGE_RANGE = (0.85, 0.95)
# skinning_<case>_same_pose: a case's training mesh and pose only (coverage_tasks).
SAME_POSE = "_same_pose"
# Averaged over the splits of a task with several (linnerud_x20).
POOLED_FIGURES = (
    "coverage",
    "width",
    "out_of_range",
    "rmse",
    "held_out_rmse",
    "held_out_distance",
    "test_distance",
)
START_ROWS, ROUND_ROWS, FINAL_ROWS = 20, 10, 120
POOL_ROWS, TEST_ROWS = 1000, 1000
ACTIVE_TASKS = ["friedman1", "friedman2", "friedman3", "deformer_v50"]
ACTIVE_TARGET_RATIO = 0.85
# On a noisy task, the curves against the noisy test targets too.
NOISY_COLUMNS = " random, noisy targets | suggest, noisy targets | ratio, noisy targets |"


def coverage_tasks(names: list[str], quick: bool) -> list[Task]:
    tasks: list[Task] = []
    for name in names:
        if name.startswith("skinning_") and name.endswith(SAME_POSE):
            # The case's training mesh, a fifth of its vertices held out: test rows exchangeable
            # with the training rows, against which the other-pose case can be read.
            case = name.removeprefix("skinning_").removesuffix(SAME_POSE)
            whole = skinning.case_task(name, skinning.CASES[case], quick)
            rows = len(whole.train_inputs)
            test = np.random.default_rng(0).permutation(rows)[: rows // 5]
            train = np.setdiff1d(np.arange(rows), test)
            inputs, targets = whole.train_inputs, whole.train_targets
            tasks.append(as_task(name, inputs[train], targets[train], inputs[test], targets[test]))
        elif name.startswith("skinning_"):
            case = name.removeprefix("skinning_")
            tasks.append(skinning.case_task(name, skinning.CASES[case], quick))
        elif name.startswith("deformer_"):
            # deformer_<case>_v<vertices>: bench/deformer.py's task, many outputs compressed.
            case, vertices = name.removeprefix("deformer_").split("_v")
            made = deformer_data.make_case(case, int(vertices), seed=0)
            tasks.append(
                as_task(
                    name, made.train_inputs, made.train_targets, made.test_inputs, made.test_targets
                )
            )
        else:
            tasks.extend(TASKS[name]())
    return tasks


def coverage_row(task: Task, budget: float, cap: float) -> dict[str, float | str]:
    run, figures = train_sgt_run(task, "std", budget, seed=0, cap_seconds=cap)
    predictor = run.best()
    mean, std = predictor.predict_with_std(task.test_inputs)
    targets = task.test_targets.astype(np.float64)
    inside = np.abs(targets - mean) <= Z_90 * std
    spread = targets.std(axis=0)
    width = (2.0 * Z_90 * std).mean(axis=0) / np.where(spread > 0, spread, 1.0)
    return {
        "task": task.name,
        "rows": len(task.train_inputs),
        "served": predictor.kind,
        "coverage": float(inside.mean()),
        "width": float(width.mean()),
        "out_of_range": float(predictor.out_of_range(task.test_inputs).mean()),
        "rmse": float(figures["rmse"]) if "rmse" in figures else float("nan"),
        **shift_figures(task, run.validation_residuals()),
    }


def shift_figures(task: Task, residuals: tuple[np.ndarray, np.ndarray] | None) -> dict[str, float]:
    """How unlike the held-out rows (what the std is calibrated on) the test rows are: the
    held-out RMSE, and the median distance, in standardised inputs, from a held-out row and from
    a test row to the nearest training row the model was fitted on."""
    if residuals is None or len(residuals[0]) == 0:
        return {
            "held_out_rmse": float("nan"),
            "held_out_distance": float("nan"),
            "test_distance": float("nan"),
        }
    rows, standardised = residuals
    inputs, targets = task.train_inputs.astype(np.float64), task.train_targets
    errors = standardised * targets.std(axis=0)
    centre, spread = inputs.mean(axis=0), inputs.std(axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    fitted = np.setdiff1d(np.arange(len(inputs)), rows)
    if len(fitted) == 0:  # leave-one-out (a GP): every row was fitted and held out in turn
        fitted = np.arange(len(inputs))
    sample = np.random.default_rng(0).permutation(fitted)[:2000]
    reference = (inputs[sample] - centre) / spread

    def nearest(points: np.ndarray) -> float:
        scaled = (points.astype(np.float64) - centre) / spread
        squared = (
            (scaled**2).sum(axis=1)[:, None]
            + (reference**2).sum(axis=1)[None]
            - 2.0 * scaled @ reference.T
        )
        if len(fitted) == len(inputs):
            squared[squared < 1e-12] = np.inf  # a row is not its own neighbour
        return float(np.median(np.sqrt(np.maximum(squared.min(axis=1), 0.0))))

    return {
        "held_out_rmse": float(np.sqrt(np.mean(errors**2))),
        "held_out_distance": nearest(inputs[rows[:2000]]),
        "test_distance": nearest(task.test_inputs[:2000]),
    }


def run_coverage(names: list[str], quick: bool, budget: float, cap: float) -> list[dict]:
    rows: list[dict] = []
    by_name: dict[str, list[dict]] = {}
    for task in coverage_tasks(names, quick):
        row = coverage_row(task, budget, cap)
        by_name.setdefault(str(row["task"]), []).append(row)
    for name, splits in by_name.items():
        # Several splits of one task (linnerud_x20) are pooled: their test rows are few.
        rows.append(
            {
                **splits[0],
                "task": name if len(splits) == 1 else f"{name} ({len(splits)} splits)",
                **{key: statistics.fmean(float(r[key]) for r in splits) for key in POOLED_FIGURES},
            }
        )
    print("\n## Coverage of mean ± 1.645·std on held-out targets (target 85-95 %)\n")
    print(
        "| task | train rows | served | coverage | width / target sd | out of range "
        "| RMSE held-out / test | nearest training row, held-out / test |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ok = COVERAGE_RANGE[0] <= row["coverage"] <= COVERAGE_RANGE[1]
        print(
            f"| {row['task']} | {row['rows']} | {row['served']} | {100 * row['coverage']:.1f} %"
            f"{'' if ok else ' (miss)'} | {row['width']:.3f} | {100 * row['out_of_range']:.1f} % "
            f"| {row['held_out_rmse']:.4g} / {row['rmse']:.4g} "
            f"| {row['held_out_distance']:.3g} / {row['test_distance']:.3g} |"
        )
    return rows


# --- active learning ----------------------------------------------------------------------------


def active_pool(
    name: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pool inputs, pool targets, test inputs, test targets, the test rows' noise-free
    targets) of a smooth task; the two differ on friedman1 only (noise of sd 1)."""
    makers = {"friedman1": make_friedman1, "friedman2": make_friedman2, "friedman3": make_friedman3}
    if name in makers:
        noise = 1.0 if name == "friedman1" else 0.0
        x, y = makers[name](n_samples=POOL_ROWS, noise=noise, random_state=100 + seed)
        x_test, y_test = makers[name](n_samples=TEST_ROWS, noise=noise, random_state=2)
        # The same state draws the same rows, then adds the noise: without it, the function.
        _, function = makers[name](n_samples=TEST_ROWS, noise=0.0, random_state=2)
        task = as_task(name, x, y, x_test, y_test)
        noise_free = function.reshape(task.test_targets.shape).astype(np.float32)
    else:
        vertices = int(name.removeprefix("deformer_v"))
        joints, encoding = deformer_data.CASES["A"]
        made = deformer_data.make_task(
            vertices, joints, encoding, train=POOL_ROWS, test=TEST_ROWS, seed=seed
        )
        task = as_task(
            name, made.train_inputs, made.train_targets, made.test_inputs, made.test_targets
        )
        noise_free = task.test_targets
    return task.train_inputs, task.train_targets, task.test_inputs, task.test_targets, noise_free


def learning_curve(name: str, seed: int, strategy: str, cap: float) -> list[tuple[float, float]]:
    """(held-out RMSE against the test targets, against their noise-free values) at each size."""
    pool_x, pool_y, test_x, test_y, test_function = active_pool(name, seed)
    rng = np.random.default_rng(seed)
    chosen = list(rng.choice(len(pool_x), size=START_ROWS, replace=False))
    curve = []
    while True:
        task = as_task(name, pool_x[chosen], pool_y[chosen], test_x, test_y)
        predictor = train_sgt_run(task, "std", cap, seed=seed, cap_seconds=cap)[0].best()
        predicted = predictor.predict(test_x).astype(np.float64)
        curve.append(
            (
                float(np.sqrt(np.mean((predicted - test_y) ** 2))),
                float(np.sqrt(np.mean((predicted - test_function) ** 2))),
            )
        )
        if len(chosen) >= FINAL_ROWS:
            return curve
        left = np.setdiff1d(np.arange(len(pool_x)), chosen)
        if strategy == "suggest":
            picked = predictor.suggest_rows(pool_x[left], ROUND_ROWS)
            chosen += [int(left[i]) for i in picked]
        else:
            chosen += [int(i) for i in rng.choice(left, size=ROUND_ROWS, replace=False)]


def run_active(names: list[str], seeds: int, cap: float) -> None:
    """The curves, and the verdict on the ratio at 120 rows against the noise-free targets: on a
    noisy task the noise is in every model's RMSE against the noisy ones (docs/uncertainty.md)."""
    sizes = list(range(START_ROWS, FINAL_ROWS + 1, ROUND_ROWS))
    print(f"\n## Active learning: median held-out RMSE over {seeds} seeds\n")
    verdicts = []
    for name in names:
        curves = {
            strategy: np.array([learning_curve(name, seed, strategy, cap) for seed in range(seeds)])
            for strategy in ("random", "suggest")
        }
        # (sizes, 2): against the test targets, against their noise-free values.
        medians = {s: np.median(c, axis=0) for s, c in curves.items()}
        noisy = not np.allclose(medians["random"][:, 0], medians["random"][:, 1])
        print(
            f"### {name}\n\n| rows | random | suggest | ratio |" + (NOISY_COLUMNS if noisy else "")
        )
        print("|---|---|---|---|" + ("---|---|---|" if noisy else ""))
        for index, rows in enumerate(sizes):
            r, s = medians["random"][index], medians["suggest"][index]
            line = f"| {rows} | {r[1]:.4g} | {s[1]:.4g} | {s[1] / r[1]:.3f} |"
            if noisy:
                line += f" {r[0]:.4g} | {s[0]:.4g} | {s[0] / r[0]:.3f} |"
            print(line)
        final_random, final_suggest = medians["random"][-1], medians["suggest"][-1]
        verdicts.append((name, *(final_suggest / final_random)[::-1]))
        print()
    met = sum(ratio <= ACTIVE_TARGET_RATIO for _, ratio, _ in verdicts)
    print(
        "| task | suggest / random at 120 rows | target <= 0.85 | against the noisy targets |"
        "\n|---|---|---|---|"
    )
    for name, ratio, noisy_ratio in verdicts:
        verdict = "met" if ratio <= ACTIVE_TARGET_RATIO else "missed"
        print(f"| {name} | {ratio:.3f} | {verdict} | {noisy_ratio:.3f} |")
    print(f"\nmet on {met} of {len(verdicts)} tasks (target: at least 3 of 4)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="coverage,latency,active")
    parser.add_argument(
        "--tasks",
        help="coverage tasks, comma-separated (quality.py names, skinning_<case>, "
        "skinning_<case>_same_pose or deformer_<case>_v<vertices>); default: all of "
        "quality.py's and skinning.py's, each skinning case also on its own pose",
    )
    parser.add_argument("--active-tasks", default=",".join(ACTIVE_TASKS))
    parser.add_argument("--quick", action="store_true", help="small meshes, 2 seeds, short caps")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--budget", type=float, default=None, help="seconds per coverage run")
    parser.add_argument("--cap", type=float, default=None, help="seconds per active-learning fit")
    args = parser.parse_args()
    torch.manual_seed(0)
    budget = args.budget or (15.0 if args.quick else 60.0)
    cap = args.cap or (4.0 if args.quick else 15.0)
    seeds = args.seeds or (2 if args.quick else 5)
    names = (
        args.tasks.split(",")
        if args.tasks
        else COVERAGE_TASKS
        + [f"skinning_{case}{pose}" for case in skinning.CASES for pose in ("", SAME_POSE)]
    )
    parts = args.parts.split(",")
    print(f"# bench/uncertainty.py on commit {git_commit()}, quick={args.quick}")
    with threadpool_limits(limits=2):
        if "coverage" in parts:
            run_coverage(names, args.quick, budget, 5 * budget)
        if "latency" in parts:
            run_served_latency(5 * budget)
            run_latency(budget, 5 * budget)
        if "active" in parts:
            run_active(args.active_tasks.split(","), seeds, cap)


if __name__ == "__main__":
    main()
