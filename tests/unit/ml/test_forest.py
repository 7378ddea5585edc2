"""The forest of randomised trees that `std` blends on few rows: what it learns, how it is stored
and served."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.families import forest
from sgt.ml.families.forest import FOREST, ForestConfig, ForestModelType, ForestRun
from sgt.ml.registry import STD

HAS_CUDA = torch.cuda.is_available()


def grown(
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    seed: int = 0,
    model_type: ForestModelType = FOREST,
    device: str = "cpu",
) -> tuple[ForestRun, Predictor]:
    shape = ModelShape(inputs.shape[1], targets.shape[1])
    run = model_type.start_training(shape, inputs, targets, start=None, seed=seed, device=device)
    while not run.step().is_converged:
        pass
    return run, run.best()


def _steps(rows: int, outputs: int = 1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets that jump where the first input crosses 0.3 and ignore the other inputs."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 3)).astype(np.float32)
    jump = (inputs[:, :1] > 0.3).astype(np.float32)
    return inputs, np.repeat(jump, outputs, axis=1) * np.arange(1, outputs + 1, dtype=np.float32)


def test_a_forest_learns_a_threshold_from_few_rows() -> None:
    inputs, targets = _steps(60)
    _, predictor = grown(inputs, targets)
    probe, expected = _steps(500, seed=1)
    error = float(np.sqrt(np.mean((predictor.predict(probe) - expected) ** 2)))
    # The mean predictor errs by about 0.46 here.
    assert error < 0.15
    # Averages of leaf means never leave the range of the training targets.
    predictions = predictor.predict(np.random.default_rng(2).normal(scale=5.0, size=(200, 3)))
    assert predictions.min() >= 0.0 and predictions.max() <= 1.0


def test_each_output_is_learnt() -> None:
    inputs, targets = _steps(60, outputs=3)
    _, predictor = grown(inputs, targets)
    probe, expected = _steps(300, outputs=3, seed=1)
    predictions = predictor.predict(probe)
    assert predictions.shape == (300, 3) and predictions.dtype == np.float32
    # Output k is k times output 1: the same trees serve all three.
    np.testing.assert_allclose(predictions[:, 2], 3.0 * predictions[:, 0], rtol=1e-5, atol=1e-5)


def test_the_same_rows_and_seed_grow_the_same_forest() -> None:
    inputs, targets = _steps(40)
    probe = np.random.default_rng(3).uniform(-1.0, 1.0, size=(50, 3)).astype(np.float32)
    first = grown(inputs, targets, seed=7)[1].predict(probe)
    assert np.array_equal(first, grown(inputs, targets, seed=7)[1].predict(probe))
    assert not np.array_equal(first, grown(inputs, targets, seed=8)[1].predict(probe))


def test_out_of_bag_residuals_are_honest() -> None:
    rng = np.random.default_rng(4)
    inputs = rng.uniform(-1.0, 1.0, size=(50, 3)).astype(np.float32)
    targets = (inputs[:, :1] + rng.normal(scale=0.5, size=(50, 1))).astype(np.float32)
    run, predictor = grown(inputs, targets)
    # The forest improved once, when its last tree was grown; further steps change nothing.
    assert not run.step().has_improved and run.best() is predictor
    residuals = run.validation_residuals()
    assert residuals is not None
    rows, values = residuals
    # With 100 trees every row was left out of some bootstrap sample.
    assert rows.tolist() == list(range(50)) and values.shape == (50, 1)
    scale = float(targets.std())
    in_sample = float(np.mean(((predictor.predict(inputs) - targets) / scale) ** 2))
    assert float(np.mean(values**2)) > in_sample


def test_a_forest_round_trips_through_its_checkpoint() -> None:
    inputs, targets = _steps(40, outputs=2)
    _, predictor = grown(inputs, targets)
    probe = np.random.default_rng(5).uniform(-1.0, 1.0, size=(30, 3)).astype(np.float32)
    for loaded in (
        FOREST.load(predictor.to_bytes(), device="cpu"),
        STD.load(predictor.to_bytes(), device="cpu"),
    ):
        assert np.array_equal(loaded.predict(probe), predictor.predict(probe))


def test_large_batches_match_small_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, targets = _steps(40, outputs=2)
    _, predictor = grown(inputs, targets)
    probe = np.random.default_rng(6).uniform(-1.0, 1.0, size=(1000, 3)).astype(np.float32)
    whole = predictor.predict(probe)
    # Chunks of a few rows each give the same predictions.
    monkeypatch.setattr(forest, "_MAX_GATHERED", 1000)
    assert np.array_equal(predictor.predict(probe), whole)


def test_the_stored_forest_fits_its_parameter_count() -> None:
    small = ForestModelType(dataclasses.replace(ForestConfig(), trees=10, max_rows=60))
    inputs, targets = _steps(200, outputs=2)  # more rows than a tree may draw
    _, predictor = grown(inputs, targets, model_type=small)
    assert isinstance(predictor, forest.ForestPredictor)
    stored = predictor.values.numel() + 4 * predictor.feature.numel()
    assert stored <= small.parameter_count(ModelShape(3, 2))


def test_degenerate_data_give_a_constant() -> None:
    constant_inputs = np.ones((12, 2), dtype=np.float32)
    targets = np.arange(12, dtype=np.float32).reshape(12, 1)
    _, predictor = grown(constant_inputs, targets)
    # No split exists: every tree is one leaf, the mean of its bootstrap sample.
    predictions = predictor.predict(np.random.default_rng(8).normal(size=(5, 2)))
    assert np.ptp(predictions) == 0.0 and abs(float(predictions[0, 0]) - 5.5) < 0.5
    _, single = grown(np.zeros((1, 2), dtype=np.float32), np.full((1, 1), 4.0, np.float32))
    np.testing.assert_allclose(single.predict(np.ones((2, 2), dtype=np.float32)), 4.0)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if HAS_CUDA else []))
def test_a_forest_grown_for_a_device_serves_there_and_elsewhere(device: str) -> None:
    inputs, targets = _steps(40, outputs=2)
    _, predictor = grown(inputs, targets, device=device)
    probe = np.random.default_rng(7).uniform(-1.0, 1.0, size=(64, 3)).astype(np.float32)
    expected = predictor.predict(probe)
    for target in ["cpu"] + (["cuda"] if HAS_CUDA else []):
        loaded = FOREST.load(predictor.to_bytes(), device=target)
        np.testing.assert_allclose(loaded.predict(probe), expected, rtol=1e-5, atol=1e-6)
