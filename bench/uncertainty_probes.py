"""The figures behind issue 17's decisions that bench/uncertainty.py does not print, each beside
its baseline from the same run (docs/uncertainty.md):

- `calibration`: per output, the share of the served model's own held-out rows and of the test
  rows inside mean ± 1.645·std, with the float32 widening of the conformal errors
  (`served_resolution`, what is served) and without it (the baseline, as before stop 25);
- `gp_spread`: for each latency model, the rank of the GP's leading-eigenvector spread, how much
  wider it is than the exact spread on test rows, what finding the basis costs, and
  `predict_with_std` at 20,000 rows in the API's row blocks with the basis and exactly;
- `shift`: on a skinning case's other pose, how far its rows lie beyond the training range, and
  the trees' interval with their constant std (baseline) and with the disagreement between the
  trees and `std`'s MLP ensemble as the spread, on the other pose and on the own pose (all
  calibrated as `std` calibrates, float32 widening included; rows out of range are served the
  targets' spread, which this part leaves out: bench/uncertainty.py prints what is served).

    python bench/uncertainty_probes.py                    # every part (about 4 minutes)
    python bench/uncertainty_probes.py --parts shift --case v20k

It reads private attributes of the GP predictor (whether and which basis it found) to
compare the two ways of computing one spread; nothing here is served.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uncertainty  # noqa: E402
from quality import TASKS, Task, git_commit, train_sgt_run  # noqa: E402
from uncertainty_latency import (  # noqa: E402
    LATENCY_ROWS,
    LATENCY_TASKS,
    interleaved_median_seconds,
    latency_rows,
)

from sgt.ml.base import ModelShape, Predictor  # noqa: E402
from sgt.ml.families.gp_posterior import GpPredictor  # noqa: E402
from sgt.ml.numerics.calibration import Z_90, conformal_scale, served_resolution  # noqa: E402
from sgt.ml.numerics.standardiser import Standardiser  # noqa: E402
from sgt.ml.parallel import RowParallelism  # noqa: E402
from sgt.ml.registry import FAMILIES, STD  # noqa: E402

BUDGET_SECONDS, CAP_SECONDS = 60.0, 300.0


def covered(errors: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per output, the share of rows with |error| <= 1.645·std."""
    return np.asarray((np.abs(errors) <= Z_90 * std).mean(axis=0))


def span(values: np.ndarray) -> str:
    return f"{100 * values.min():.1f}-{100 * values.max():.1f} %"


def probe_calibration(case: str) -> None:
    [task] = uncertainty.coverage_tasks([f"skinning_{case}{uncertainty.SAME_POSE}"], False)
    run, _ = train_sgt_run(task, "std", BUDGET_SECONDS, seed=0, cap_seconds=CAP_SECONDS)
    predictor, residuals = run.best(), run.validation_residuals()
    assert residuals is not None
    rows, standardised = residuals
    held_inputs, test_inputs = task.train_inputs[rows], task.test_inputs
    held_errors = predictor.predict(held_inputs) - task.train_targets[rows]
    test_errors = predictor.predict(test_inputs) - task.test_targets
    # The baseline: the conformal scale of the same residuals as `std` computes them (its
    # target scale), without the widening; the rows are in range, so the std is the scale.
    target_scale = Standardiser.fit(task.train_targets, device="cpu").scale.double().numpy()
    scale = conformal_scale(standardised * target_scale, np.ones_like(standardised))
    unwidened = scale.astype(np.float32)
    stds = {
        "served (widened)": (
            predictor.predict_std(held_inputs),
            predictor.predict_std(test_inputs),
        ),
        "without the widening": (
            np.broadcast_to(unwidened, held_errors.shape),
            np.broadcast_to(unwidened, test_errors.shape),
        ),
    }
    print(f"\n## Calibration on skinning_{case}_same_pose ({predictor.kind})\n")
    print("| std | held-out rows, per output | test rows, per output | test rows, all |")
    print("|---|---|---|---|")
    for label, (held_std, test_std) in stds.items():
        held, test = covered(held_errors, held_std), covered(test_errors, test_std)
        print(f"| {label} | {span(held)} | {span(test)} | {100 * test.mean():.1f} % |")


def probe_gp_spread(repeats: int = 9) -> None:
    print(f"\n## The GP's spread from its leading eigenvectors, {LATENCY_ROWS:,} rows\n")
    print(
        "| model | conditioning rows | rank | wider than exact, max | basis found in (s) "
        "| with_std exact (s) | with_std basis (s) | predict (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in LATENCY_TASKS:
        [task] = TASKS[name]()
        trained = train_sgt_run(task, "std", BUDGET_SECONDS, seed=0, cap_seconds=CAP_SECONDS)
        predictor = trained[0].best()
        if not isinstance(predictor, GpPredictor):
            print(f"| {name} | served {predictor.kind}, not a GP | | | | | | |")
            continue
        exact = exact_copy(predictor)
        rows = latency_rows(task)
        began = time.perf_counter()
        basis_spread = predictor.raw_spread(rows[:2000])
        found = time.perf_counter() - began
        wider = basis_spread / exact.raw_spread(rows[:2000]) - 1.0
        basis = predictor._basis
        rank = "exact" if basis is None else str(basis.shape[1])
        exact_seconds, basis_seconds, plain = api_block_seconds(exact, predictor, rows, repeats)
        print(
            f"| {name} | {predictor.rows.shape[0]} | {rank} | {100 * wider.max():.2f} % "
            f"| {found:.2f} | {exact_seconds:.3f} | {basis_seconds:.3f} | {plain:.3f} |"
        )


def api_block_seconds(
    exact: Predictor, predictor: Predictor, rows: np.ndarray, repeats: int
) -> tuple[float, float, float]:
    """Median seconds of `predict_with_std` exactly and with the basis, and of `predict`, as the
    API runs them: row blocks on two threads, torch single-threaded in each."""
    blocks, threads = RowParallelism(2), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exact_seconds, basis_seconds = interleaved_median_seconds(
            lambda: blocks.predict_with_std(exact, rows),
            lambda: blocks.predict_with_std(predictor, rows),
            repeats,
        )
        plain, _ = interleaved_median_seconds(
            lambda: blocks.predict(predictor, rows), lambda: None, repeats
        )
    finally:
        torch.set_num_threads(threads)
    return exact_seconds, basis_seconds, plain


def exact_copy(predictor: GpPredictor) -> GpPredictor:
    """The same posterior, told that no basis suffices: its spread is the exact solve's."""
    copy = STD.load(predictor.to_bytes(), device="cpu")
    assert isinstance(copy, GpPredictor)
    copy._basis_found, copy._basis = True, None
    return copy


def probe_shift(case: str) -> None:
    names = [f"skinning_{case}", f"skinning_{case}{uncertainty.SAME_POSE}"]
    tasks = uncertainty.coverage_tasks(names, False)
    beyond = beyond_range(tasks[0])
    print(f"\n## skinning_{case} on its other pose: the rows beyond the training range\n")
    print("| rows flagged | farthest input beyond the range, in ranges: p10 / p50 / p90 |")
    print("|---|---|")
    print(
        f"| {100 * (beyond > 0.1).mean():.1f} % | "
        + " / ".join(f"{q:.2f}" for q in np.quantile(beyond, [0.1, 0.5, 0.9]))
        + " |"
    )
    print("\n## The trees' interval: constant std and the trees-MLP disagreement as the spread\n")
    print("| task | spread | coverage | width / target sd | log-correlation, row error and std |")
    print("|---|---|---|---|---|")
    for task in tasks:
        trees, held_rows = trained_family(task, "gbt")
        mlp, mlp_rows = trained_family(task, "mlp")
        # The same split (`split_holdout` with the same seed), listed in another order.
        assert np.array_equal(np.sort(held_rows), np.sort(mlp_rows)), "held out different rows"
        x, targets = task.train_inputs, task.train_targets.astype(np.float64)
        errors = trees.predict(x[held_rows]) - targets[held_rows]
        test_errors = trees.predict(task.test_inputs) - task.test_targets
        held_gap, test_gap = (
            np.abs(trees.predict(rows) - mlp.predict(rows))
            for rows in (x[held_rows], task.test_inputs)
        )
        # A floor, so that rows where the two agree by chance keep an interval.
        floors = {
            "1e-3 target sd": 1e-3 * targets.std(axis=0),
            "its held-out median": np.median(held_gap, axis=0),
        }
        spreads = {"constant conformal": (np.ones_like(errors), np.ones_like(test_errors))}
        for floor_name, floor in floors.items():
            spreads[f"disagreement, floor {floor_name}"] = (
                np.hypot(held_gap, floor),
                np.hypot(test_gap, floor),
            )
        mlp_spread = [mlp.raw_spread(rows) for rows in (x[held_rows], task.test_inputs)]
        if mlp_spread[0] is not None and mlp_spread[1] is not None:
            spreads["disagreement and the MLP members' spread"] = (
                np.hypot(held_gap, mlp_spread[0]),
                np.hypot(test_gap, mlp_spread[1]),
            )
        for label, (held_spread, test_spread) in spreads.items():
            scale = conformal_scale(errors, held_spread, resolution=served_resolution(targets))
            std = test_spread * scale
            width = (2 * Z_90 * std).mean(axis=0) / task.test_targets.std(axis=0)
            row_error = np.sqrt((test_errors**2).mean(axis=1))
            row_std = np.sqrt((std**2).mean(axis=1))
            correlation = np.corrcoef(np.log(row_error + 1e-9), np.log(row_std + 1e-12))[0, 1]
            print(
                f"| {task.name} | {label} | {100 * covered(test_errors, std).mean():.1f} % "
                f"| {width.mean():.3f} | {np.nan_to_num(correlation):.2f} |"
            )


def beyond_range(task: Task) -> np.ndarray:
    """Per test row, how far its farthest input lies beyond the training [min, max], in that
    input's training ranges (0 inside)."""
    inputs = task.train_inputs.astype(np.float64)
    low, high = inputs.min(axis=0), inputs.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    rows = task.test_inputs.astype(np.float64)
    return np.asarray(np.maximum(0.0, np.maximum(rows - high, low - rows) / width).max(axis=1))


def trained_family(task: Task, kind: str) -> tuple[Predictor, np.ndarray]:
    """`std`'s candidate of family `kind` trained on the task as `std` trains it (seed 0), and
    the rows it held out."""
    [family] = [family for family in FAMILIES if family.kind == kind]
    shape = ModelShape(task.train_inputs.shape[1], task.train_targets.shape[1])
    run = family.model_type.start_training(
        shape, task.train_inputs, task.train_targets, start=None, seed=0, device="cpu"
    )
    began = time.perf_counter()
    while not run.step().is_converged and time.perf_counter() - began < CAP_SECONDS:
        pass
    residuals = run.validation_residuals()
    assert residuals is not None
    return run.best(), residuals[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="calibration,gp_spread,shift")
    parser.add_argument("--case", default="v5k", help="skinning case (bench/skinning.py)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"# bench/uncertainty_probes.py on commit {git_commit()}")
    parts = args.parts.split(",")
    with threadpool_limits(limits=2):
        if "calibration" in parts:
            probe_calibration(args.case)
        if "gp_spread" in parts:
            probe_gp_spread()
        if "shift" in parts:
            probe_shift(args.case)


if __name__ == "__main__":
    main()
