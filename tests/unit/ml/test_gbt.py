"""The XGBoost candidate of `std`: early stopping, round cap, checkpoints, and std's use of it."""

from __future__ import annotations

import re

import numpy as np

from sgt.ml.base import ModelShape, Predictor, TrainingRun
from sgt.ml.families.gbt import GBT, KIND, GbtConfig, GbtModelType
from sgt.ml.registry import STD, get_model_type


def step_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A threshold effect and an interaction that trees fit easily; two outputs."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 4)).astype(np.float32)
    first = np.where(inputs[:, 0] > 0.2, 3.0, -1.0) + (inputs[:, 1] > 0) * inputs[:, 2]
    second = 50.0 + 10.0 * (inputs[:, 3] > -0.5)
    return inputs, np.stack([first, second], axis=1).astype(np.float32)


def converge(run: TrainingRun, max_steps: int = 400) -> Predictor:
    for _ in range(max_steps):
        if run.step().is_converged:
            break
    return run.best()


def test_it_learns_thresholds_and_stops_before_the_cap() -> None:
    inputs, targets = step_data(800, seed=1)
    run = GBT.start_training(ModelShape(4, 2), inputs, targets, start=None, seed=2, device="cpu")
    predictor = converge(run)
    test_inputs, test_targets = step_data(500, seed=3)
    errors = predictor.predict(test_inputs) - test_targets
    relative_rmse = np.sqrt((errors**2).mean(axis=0)) / test_targets.std(axis=0)
    assert np.all(relative_rmse < 0.15), relative_rmse
    residuals = run.validation_residuals()
    assert residuals is not None and residuals[1].shape == (len(residuals[0]), 2)


def test_rounds_are_capped_so_that_many_outputs_stay_fast_to_serve() -> None:
    config = GbtConfig(rounds_per_step=10, patience_rounds=10_000, min_relative=0.0)
    assert (config.round_cap(17), config.round_cap(80), config.round_cap(2700)) == (58, 12, 1)
    inputs, targets = step_data(300, seed=4)
    wide = np.repeat(targets, 40, axis=1)  # 80 outputs: a cap of 12 rounds
    run = GbtModelType(config).start_training(
        ModelShape(4, 80), inputs, wide, start=None, seed=0, device="cpu"
    )
    steps = 0
    while not run.step().is_converged:
        steps += 1
    assert steps + 1 == 2  # 10 rounds, then the 2 left to the cap


def test_checkpoint_round_trip_predicts_identically() -> None:
    inputs, targets = step_data(300, seed=5)
    run = GBT.start_training(ModelShape(4, 2), inputs, targets, start=None, seed=6, device="cpu")
    run.step()
    predictor = run.best()
    assert predictor.kind == KIND
    loaded = STD.load(predictor.to_bytes(), device="cpu")
    probe = step_data(50, seed=7)[0]
    assert np.array_equal(loaded.predict(probe), predictor.predict(probe))
    assert loaded.predict(probe[:0]).shape == (0, 2)
    untrained = GBT.initial(ModelShape(4, 2), seed=0)
    assert np.array_equal(
        GBT.load(untrained.to_bytes(), device="cpu").predict(probe), np.zeros((50, 2))
    )


def test_std_trains_it_on_many_rows_only() -> None:
    assert KIND in STD.candidate_kinds(5000, None)
    assert KIND not in STD.candidate_kinds(300, None)
    assert get_model_type("std").parameter_count(ModelShape(71, 17)) > 0


def features_per_tree(run: TrainingRun) -> list[int]:
    """How many distinct inputs each tree of the run's booster splits on."""
    booster = run.best()._booster  # type: ignore[attr-defined]
    return [len(set(re.findall(r"\[(f\d+)<", tree))) for tree in booster.get_dump()]


def test_each_tree_sees_a_share_of_wide_inputs_and_all_of_narrow_ones() -> None:
    rng = np.random.default_rng(8)
    wide = rng.normal(size=(2000, 71)).astype(np.float32)
    # Every input matters a little, so a tree that saw them all would split on many.
    targets = (wide @ rng.normal(size=(71, 1))).astype(np.float32)
    run = GBT.start_training(ModelShape(71, 1), wide, targets, start=None, seed=0, device="cpu")
    run.step()
    seen = features_per_tree(run)
    assert max(seen) <= 22 < max(seen) * 2  # ceil(0.3 x 71), and the trees do use that many
    assert GbtConfig().columns_per_tree(4) == 1.0
    assert round(GbtConfig().columns_per_tree(12) * 12) == 10  # never fewer than 10
