"""How `std` does on tens to hundreds of rows, against each of its candidate families alone.

Samples (30, 60, 120 rows by default) of four real data sets and one synthetic one, each
drawn 10 times with fixed seeds; the test rows are the next 200 of the same shuffle (linnerud:
15 training and 5 test rows per split). For every contender the table shows its test RMSE divided
by the mean predictor's on the same split, averaged over the splits: below 1 beats the mean.
This is the study behind `std`'s blend of candidates on up to BLEND_MAX_ROWS rows.

    .venv/bin/python bench/small_data.py                      # every task and size, ~20 min
    .venv/bin/python bench/small_data.py --sizes 30 --splits 5
    .venv/bin/python bench/small_data.py --tasks diabetes,cancer,friedman1 --sizes 240,360

Where a data set is small the test rows are those left after the sample (wine has 178 rows); a
size that leaves fewer than MIN_TEST_ROWS is skipped.

Contenders: `std`; the `gp` and `linear` types; `std`'s MLP ensemble and its forest of
randomised trees, each trained alone ("ensemble", "forest").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_linnerud,
    load_wine,
    make_friedman1,
)
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sgt.ml.base import ModelShape, ModelType  # noqa: E402
from sgt.ml.families import forest, mlp  # noqa: E402
from sgt.ml.registry import get_model_type  # noqa: E402

TEST_ROWS = 200
# A sample is tested on the rows after it, up to TEST_ROWS; a size that leaves fewer is skipped.
MIN_TEST_ROWS = 50
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def pool(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A data set as (inputs, targets) with 2-D targets."""
    if name == "diabetes":
        inputs, target = load_diabetes(return_X_y=True)
        return inputs, target[:, None]
    if name == "wine":  # alcohol content from the other 12 measurements
        data = load_wine().data
        return np.delete(data, 0, axis=1), data[:, :1]
    if name == "cancer":  # mean radius from the other nine "mean" measurements
        data = load_breast_cancer().data[:, :10]
        return data[:, 1:], data[:, :1]
    if name == "friedman1":
        inputs, target = make_friedman1(n_samples=1000, noise=1.0, random_state=5)
        return inputs, target[:, None]
    inputs, targets = load_linnerud(return_X_y=True)
    return inputs, targets


def splits(
    name: str, inputs: np.ndarray, targets: np.ndarray, rows: int, count: int
) -> Iterator[Split]:
    """`count` fixed samples of `rows` rows of data set `name` (its `inputs` and `targets`)."""
    for seed in range(1, count + 1):
        if name == "linnerud":
            yield tuple(train_test_split(inputs, targets, test_size=5, random_state=seed))  # type: ignore[misc]
            continue
        order = np.random.default_rng(seed).permutation(len(inputs))
        train, test = order[:rows], order[rows : rows + TEST_ROWS]
        yield inputs[train], inputs[test], targets[train], targets[test]


def contenders() -> dict[str, ModelType]:
    ensemble = mlp.MlpModelType(name="ensemble", description="std's ensemble", config=mlp.ENSEMBLE)
    return {
        "std": get_model_type("std"),
        "gp": get_model_type("gp"),
        "linear": get_model_type("linear"),
        "ensemble": ensemble,
        "forest": forest.FOREST,
    }


def fitted(
    kind: ModelType, train_inputs: np.ndarray, train_targets: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    shape = ModelShape(train_inputs.shape[1], train_targets.shape[1])
    run = kind.start_training(
        shape,
        train_inputs.astype(np.float32),
        train_targets.astype(np.float32),
        start=None,
        seed=0,
        device="cpu",
    )
    while not run.step().is_converged:
        pass
    return run.best().predict


def rmse(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.sqrt(((predictions.astype(np.float64) - targets) ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default="linnerud,diabetes,wine,cancer,friedman1")
    parser.add_argument("--sizes", default="30,60,120", help="training rows per sample")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="bench/results/small_data.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = contenders()
    rows: list[dict[str, object]] = []
    print(f"{'task':<10} {'rows':>5}  " + " ".join(f"{name:>9}" for name in kinds))
    for task in args.tasks.split(","):
        inputs, targets = pool(task)
        sizes = [15] if task == "linnerud" else [int(size) for size in args.sizes.split(",")]
        for size in sizes:
            if task != "linnerud" and size + MIN_TEST_ROWS > len(inputs):
                print(f"{task:<10} {size:>5}  (fewer than {size + MIN_TEST_ROWS} rows: skipped)")
                continue
            ratios: dict[str, list[float]] = {name: [] for name in kinds}
            for train_x, test_x, train_y, test_y in splits(
                task, inputs, targets, size, args.splits
            ):
                baseline = rmse(np.broadcast_to(train_y.mean(axis=0), test_y.shape), test_y)
                for name, kind in kinds.items():
                    predict = fitted(kind, train_x, train_y)
                    ratios[name].append(rmse(predict(test_x.astype(np.float32)), test_y) / baseline)
            means = {name: float(np.mean(values)) for name, values in ratios.items()}
            rows.append({"task": task, "rows": size, "splits": args.splits, **means})
            print(
                f"{task:<10} {size:>5}  " + " ".join(f"{means[name]:>9.4g}" for name in kinds),
                flush=True,
            )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows}, indent=2))
    print(f"\nRMSE / mean predictor's RMSE, averaged over splits; report in {args.out}")


if __name__ == "__main__":
    main()
