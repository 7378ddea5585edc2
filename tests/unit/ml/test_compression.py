"""Principal shapes (ml/numerics/compression) and `std` on many outputs (std_compressed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgt.ml.base import ModelShape, TrainingRun
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint
from sgt.ml.families.linear import LINEAR, LinearPredictor
from sgt.ml.numerics.compression import (
    balancing_rotation,
    count_for_validation,
    count_for_variance,
    fit_pca,
    held_out_unexplained,
    project,
    reconstruct,
)
from sgt.ml.parallel import COLUMN_SPLIT_MIN_OUTPUTS, Reconstructs, RowParallelism
from sgt.ml.registry import STD
from sgt.ml.types.std_compressed import (
    COMPRESS_MIN_OUT_SIZE,
    MAX_COMPONENTS,
    CompressedPredictor,
    CompressedRun,
)


def low_rank(
    rows: int, columns: int, rank: int, *, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(rows, rank)) * np.geomspace(10.0, 1.0, rank)
    data = factors @ rng.normal(size=(rank, columns)) + noise * rng.normal(size=(rows, columns))
    return (data - data.mean(axis=0)).astype(np.float32)


def test_shapes_are_orthonormal_and_rebuild_low_rank_rows() -> None:
    data = low_rank(40, 500, 5)
    shapes = fit_pca(data, max_components=10)
    assert shapes.count == 5  # the rank, not the bound
    gram = shapes.components @ shapes.components.T
    assert np.allclose(gram, np.eye(5), atol=1e-4)
    rebuilt = reconstruct(project(data, shapes.components), shapes.components)
    assert np.abs(rebuilt - data).max() < 1e-3 * np.abs(data).max()
    assert shapes.variances[0] >= shapes.variances[-1]
    assert np.isclose(shapes.variances.sum(), shapes.total_variance, rtol=1e-4)


def test_the_bound_caps_the_shapes_and_keeps_the_largest() -> None:
    data = low_rank(40, 300, 8)
    shapes = fit_pca(data, max_components=3)
    assert shapes.components.shape == (3, 300)
    assert count_for_variance(shapes, kept=0.5) <= 3
    full = fit_pca(data, max_components=8)
    assert np.allclose(np.abs(shapes.components), np.abs(full.components[:3]), atol=1e-3)


def test_constant_rows_give_one_zero_shape() -> None:
    shapes = fit_pca(np.zeros((6, 20), dtype=np.float32), max_components=4)
    assert shapes.components.shape == (1, 20)
    assert not shapes.components.any()
    assert count_for_variance(shapes, kept=0.99) == 1


def test_the_variance_rule_counts_the_shapes_that_explain_enough() -> None:
    data = low_rank(50, 200, 6)
    shapes = fit_pca(data, max_components=6)
    explained = np.cumsum(shapes.variances) / shapes.total_variance
    for kept in (0.5, 0.9, 0.999):
        count = count_for_variance(shapes, kept=kept)
        assert explained[count - 1] >= kept
        assert count == 1 or explained[count - 2] < kept


def test_held_out_rows_stop_gaining_once_shapes_are_noise() -> None:
    data = low_rank(120, 400, 4, noise=0.05)
    shapes = fit_pca(data[:90], max_components=30)
    unexplained = held_out_unexplained(data[90:], shapes.components)
    assert np.all(np.diff(unexplained) <= 1e-9)  # more shapes never explain less
    assert count_for_validation(unexplained, tolerance=1e-3) == 4


def test_the_balancing_rotation_gives_every_column_the_same_variance() -> None:
    rng = np.random.default_rng(1)
    coefficients = rng.normal(size=(200, 12)) * np.geomspace(30.0, 0.01, 12)
    covariance = coefficients.T @ coefficients / 200
    rotation = balancing_rotation(covariance)
    assert np.allclose(rotation.T @ rotation, np.eye(12), atol=1e-10)
    balanced = np.diag(rotation.T @ covariance @ rotation)
    assert np.allclose(balanced, np.trace(covariance) / 12, rtol=1e-9)
    assert np.array_equal(balancing_rotation(np.array([[2.0]])), np.eye(1))


def many_outputs(rows: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Targets wider than the compression threshold, linear in the inputs through 3 shapes."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 3)).astype(np.float32)
    shapes = rng.normal(size=(3, COMPRESS_MIN_OUT_SIZE + 6))
    targets = inputs.astype(np.float64) @ shapes + 5.0
    return inputs, targets.astype(np.float32)


def linear_coefficients(shape: ModelShape, inputs: np.ndarray, targets: np.ndarray) -> TrainingRun:
    return LINEAR.start_training(shape, inputs, targets, start=None, seed=0, device="cpu")


def converge(run: TrainingRun) -> None:
    for _ in range(50):
        if run.step().is_converged:
            return
    raise AssertionError("the run did not converge")


def test_a_compressed_run_learns_few_coefficients_and_rebuilds_every_output() -> None:
    inputs, targets = many_outputs(60)
    shape = ModelShape(3, targets.shape[1])
    run = CompressedRun(
        shape=shape,
        inputs=inputs[:40],
        targets=targets[:40],
        untrained=STD.initial(shape, seed=0),
        make_coefficient_run=linear_coefficients,
        seed=0,
    )
    converge(run)
    assert run.components == 3
    predicted = run.best().predict(inputs[40:])
    assert predicted.shape == (20, shape.out_size) and predicted.dtype == np.float32
    assert np.sqrt(np.mean((predicted - targets[40:]) ** 2)) < 1e-2 * targets.std()


def test_the_coefficient_model_sees_columns_of_equal_variance_and_outputs_keep_their_sizes() -> (
    None
):
    # Outputs of very different spreads: one shape moves a few outputs a lot, another all a little.
    rng = np.random.default_rng(2)
    inputs = rng.uniform(-1.0, 1.0, size=(60, 2)).astype(np.float32)
    loud = np.zeros(COMPRESS_MIN_OUT_SIZE)
    loud[:50] = 10.0
    quiet = rng.normal(size=COMPRESS_MIN_OUT_SIZE) * 0.3
    targets = (inputs[:, :1] @ loud[None] + inputs[:, 1:] @ quiet[None]).astype(np.float32)
    seen: list[np.ndarray] = []

    def recording(shape: ModelShape, rows: np.ndarray, coefficients: np.ndarray) -> TrainingRun:
        seen.append(coefficients)
        return linear_coefficients(shape, rows, coefficients)

    shape = ModelShape(2, COMPRESS_MIN_OUT_SIZE)
    run = CompressedRun(
        shape=shape,
        inputs=inputs[:40],
        targets=targets[:40],
        untrained=STD.initial(shape, seed=0),
        make_coefficient_run=recording,
        seed=0,
    )
    converge(run)
    assert run.components == 2
    spreads = seen[0].std(axis=0)
    assert np.allclose(spreads, spreads.mean(), rtol=1e-3)
    predicted = run.best().predict(inputs[40:])
    errors = predicted - targets[40:]
    assert np.abs(errors[:, :50]).max() < 1e-3 * 10.0
    assert np.abs(errors[:, 50:]).max() < 1e-3 * 0.3


def test_std_compresses_wide_models_and_its_checkpoint_round_trips() -> None:
    inputs, targets = many_outputs(40)
    shape = ModelShape(3, targets.shape[1])
    untrained = STD.initial(shape, seed=0)
    assert isinstance(untrained, CompressedPredictor)
    assert not untrained.predict(inputs[:2]).any()  # untrained, a wide std answers 0
    run = STD.start_training(shape, inputs, targets, start=None, seed=0, device="cpu")
    assert isinstance(run, CompressedRun)
    run.step()  # the shapes are fitted; the coefficient model is std's own (untrained yet)
    trained = run.best()
    assert isinstance(trained, CompressedPredictor) and trained.components == run.components
    data = trained.to_bytes()
    # float32 shapes and mean beside the coefficient model's own checkpoint
    tables = 4 * (run.components + 1) * shape.out_size
    assert len(data) < tables + len(trained.inner.to_bytes()) + 4096
    loaded = STD.load(data, device="cpu")
    assert isinstance(loaded, CompressedPredictor)
    assert np.array_equal(loaded.predict(inputs), trained.predict(inputs))


def test_the_parameter_bound_counts_what_a_compressed_std_allocates() -> None:
    wide = ModelShape(9, 150_000)
    assert STD.parameter_count(wide) < 50_000_000
    assert STD.parameter_count(wide) >= MAX_COMPONENTS * wide.out_size
    narrow = ModelShape(9, COMPRESS_MIN_OUT_SIZE - 1)
    # Below the threshold every direct candidate is counted, each as wide as the outputs.
    assert STD.parameter_count(narrow) > STD.parameter_count(ModelShape(9, COMPRESS_MIN_OUT_SIZE))


def test_a_compressed_checkpoint_with_mismatched_shapes_is_refused() -> None:
    inner = LINEAR.initial(ModelShape(2, 3), seed=0)
    shape = ModelShape(2, COMPRESS_MIN_OUT_SIZE)
    broken = pack_checkpoint(
        kind="pca",
        shape=shape,
        payload={
            "shapes": torch.zeros(2, shape.out_size),
            "mean": torch.zeros(shape.out_size),
            "inner": torch.frombuffer(bytearray(inner.to_bytes()), dtype=torch.uint8),
        },
    )
    with pytest.raises(CheckpointUnreadable):
        STD.load(broken, device="cpu")


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("rows", [1, 7])
def test_the_api_splits_a_wide_reconstruction_by_columns_with_the_same_answer(
    threads: int, rows: int
) -> None:
    out_size = COLUMN_SPLIT_MIN_OUTPUTS + 5  # not a multiple of the thread count
    rng = np.random.default_rng(threads)
    inner = LinearPredictor(
        shape=ModelShape(3, 4),
        weight=torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32)),
        bias=torch.from_numpy(rng.normal(size=4).astype(np.float32)),
    )
    predictor = CompressedPredictor(
        shape=ModelShape(3, out_size),
        shapes=rng.normal(size=(4, out_size)).astype(np.float32),
        mean=rng.normal(size=out_size).astype(np.float32),
        inner=inner,
    )
    assert isinstance(predictor, Reconstructs)
    inputs = rng.normal(size=(rows, 3)).astype(np.float32)
    split = RowParallelism(threads).predict(predictor, inputs)
    np.testing.assert_array_equal(split, predictor.predict(inputs))
    assert split.shape == (rows, out_size)
