"""Standard deviations, out-of-range flags and sample suggestions of every predictor kind
(docs/uncertainty.md): calibrated where `std` chose the weights, stored in the checkpoint, and
sane for checkpoints written before calibration existed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgt.ml.base import ModelShape, Predictor, TrainingRun
from sgt.ml.checkpoints import pack_checkpoint, unpack_checkpoint
from sgt.ml.families.gbt import GBT
from sgt.ml.families.gp_posterior import GpPredictor, Hyper, condition
from sgt.ml.numerics.calibration import (
    Z_90,
    Calibration,
    conformal_scale,
    input_bounds,
    rows_out_of_range,
)
from sgt.ml.numerics.kernels import leading_variance_basis
from sgt.ml.numerics.selection import integrated_variance_batch, spread_weighted_farthest_batch
from sgt.ml.numerics.standardiser import Standardiser
from sgt.ml.registry import FAMILIES, STD, get_model_type
from sgt.ml.types.blend import BlendPredictor
from sgt.ml.types.std_calibration import calibrate_single
from sgt.ml.types.std_compressed import CompressedPredictor
from sgt.ml.types.weights import WeightsPredictor

SHAPE = ModelShape(2, 1)


def noisy(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 2)).astype(np.float32)
    targets = np.sin(3.0 * inputs[:, :1]) + 0.5 * inputs[:, 1:] + 0.1 * rng.normal(size=(rows, 1))
    return inputs, targets.astype(np.float32)


def calibrated_gp(rows: int = 60) -> Predictor:
    """A GP trained as `std` serves one alone: calibrated on its leave-one-out residuals."""
    inputs, targets = noisy(rows, seed=0)
    run: TrainingRun = get_model_type("gp").start_training(
        SHAPE, inputs, targets, start=None, seed=0, device="cpu"
    )
    while not run.step().is_converged:
        pass
    predictor = run.best()
    residuals = run.validation_residuals()
    assert residuals is not None
    scale = targets.std(axis=0).astype(np.float64)
    predictor.calibration = calibrate_single(
        predictor, residuals, inputs=inputs, targets=targets, target_scale=scale
    )
    return predictor


def a_calibration(in_size: int = 2, out_size: int = 1) -> Calibration:
    return Calibration(np.full(out_size, 0.25), np.full(in_size, -1.0), np.full(in_size, 1.0))


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.kind)
def test_every_family_keeps_its_calibration_in_the_checkpoint(family: object) -> None:
    predictor = family.model_type.initial(SHAPE, seed=0)  # type: ignore[attr-defined]
    predictor.calibration = a_calibration()
    loaded = STD.load(predictor.to_bytes(), device="cpu")
    assert loaded.calibration is not None
    assert np.array_equal(loaded.calibration.scale, [0.25])
    assert loaded.out_of_range(np.array([[0.0, 0.0], [0.0, 1.5]], np.float32)).tolist() == [
        False,
        True,
    ]


def test_a_blend_keeps_its_calibration_and_answers_a_constant_deviation() -> None:
    members = [get_model_type(name).initial(SHAPE, seed=0) for name in ("linear", "mlp")]
    blend = BlendPredictor(shape=SHAPE, members=members, weights=[0.5, 0.5])
    blend.calibration = a_calibration()
    loaded = STD.load(blend.to_bytes(), device="cpu")
    std = loaded.predict_std(np.zeros((4, 2), np.float32))
    assert std.dtype == np.float32 and np.allclose(std, 0.25)


def test_a_checkpoint_from_before_calibration_still_loads_uncalibrated() -> None:
    linear = get_model_type("linear").initial(SHAPE, seed=0)
    envelope = unpack_checkpoint(linear.to_bytes(), device="cpu")
    old = pack_checkpoint(kind=envelope.kind, shape=envelope.shape, payload=envelope.payload)
    loaded = STD.load(old, device="cpu")
    probe = np.array([[0.0, 0.0], [50.0, 0.0]], np.float32)
    assert loaded.calibration is None
    # A kind without a spread of its own has no information: zeros, and nothing flagged.
    assert np.array_equal(loaded.predict_std(probe), np.zeros((2, 1), np.float32))
    assert loaded.out_of_range(probe).tolist() == [False, False]


def test_the_conformal_scale_covers_ninety_percent_of_its_own_rows() -> None:
    rng = np.random.default_rng(1)
    residuals = rng.normal(scale=3.0, size=(400, 2))
    scale = conformal_scale(residuals, np.ones_like(residuals))
    assert np.allclose(scale, 3.0, rtol=0.15)
    covered = np.abs(residuals) <= Z_90 * scale
    assert 0.89 <= covered.mean() <= 0.93


def test_few_rows_pool_their_outputs_into_one_scale() -> None:
    residuals = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    scale = conformal_scale(residuals, np.ones_like(residuals))
    assert scale[0] == scale[1] == pytest.approx(30.0 / Z_90, rel=1e-4)


def test_trees_on_mostly_zero_targets_cover_their_own_held_out_rows() -> None:
    # Skin-weight-like outputs: exact zeros on most rows, where the trees answer one small
    # constant, so many held-out errors equal the conformal quantile to the last bit.
    rng = np.random.default_rng(0)
    inputs = rng.uniform(-1.0, 1.0, size=(1500, 4)).astype(np.float32)
    centres = rng.uniform(-1.0, 1.0, size=(12, 4))
    near = np.exp(-8.0 * ((inputs[:, None, :] - centres[None]) ** 2).sum(axis=2))
    near[near < 0.3] = 0.0
    targets = (near / np.maximum(near.sum(axis=1, keepdims=True), 1e-9)).astype(np.float32)
    shape = ModelShape(4, 12)
    run = GBT.start_training(shape, inputs, targets, start=None, seed=0, device="cpu")
    while not run.step().is_converged:
        pass
    predictor, residuals = run.best(), run.validation_residuals()
    assert residuals is not None
    scale = Standardiser.fit(targets, device="cpu").scale.double().numpy()
    predictor.calibration = calibrate_single(
        predictor, residuals, inputs=inputs, targets=targets, target_scale=scale
    )
    rows = residuals[0]
    mean, std = predictor.predict_with_std(inputs[rows])
    covered = (np.abs(mean - targets[rows]) <= Z_90 * std).mean(axis=0)
    assert covered.min() >= 0.9, covered.round(3)


def test_out_of_range_allows_a_tenth_of_the_range_beyond_the_training_rows() -> None:
    low, high = input_bounds(np.array([[0.0, 5.0], [10.0, 5.0]]))
    probe = np.array([[-0.9, 5.0], [10.9, 5.0], [-1.1, 5.0], [5.0, 5.1]])
    assert rows_out_of_range(probe, low, high).tolist() == [False, False, True, True]


def test_the_std_rises_to_the_targets_spread_as_a_row_leaves_the_training_range() -> None:
    inputs = np.array([[0.0, 5.0], [10.0, 5.0], [4.0, 5.0]])
    low, high = input_bounds(inputs)
    calibration = Calibration(np.array([0.5]), low, high, prior=np.array([3.0]))
    # Inside [min, max]; halfway into the margin; at its end; far past; past a constant input.
    probe = np.array([[5.0, 5.0], [10.5, 5.0], [11.0, 5.0], [40.0, 5.0], [5.0, 5.1]])
    std = calibration.served_std(probe, np.ones((len(probe), 1)))[:, 0]
    assert std == pytest.approx([0.5, 1.5, 3.0, 3.0, 3.0], rel=1e-3)
    # A spread of its own above the prior stands.
    assert calibration.served_std(probe[3:4], np.array([[10.0]]))[0, 0] == pytest.approx(5.0)


def test_a_calibration_without_a_prior_keeps_its_conformal_std_everywhere() -> None:
    prior = Calibration(np.array([0.5]), np.zeros(1), np.ones(1), prior=np.array([3.0]))
    restored = Calibration.from_state(prior.to_state())
    assert restored is not None and restored.prior is not None
    assert restored.prior.tolist() == [3.0]
    state = prior.to_state()
    del state["prior"]  # a checkpoint written before the prior was kept
    older = Calibration.from_state(state)
    assert older is not None and older.prior is None
    far = np.array([[50.0]])
    assert older.served_std(far, np.ones((1, 1)))[0, 0] == pytest.approx(0.5)
    assert Calibration.from_state({**prior.to_state(), "prior": [1.0, 2.0]}) is None


def gp_posterior(rows: np.ndarray, targets: np.ndarray, noise: float = 1e-6) -> GpPredictor:
    """A noise-free fit as maximum likelihood makes one (friedman2 in bench/quality.py): long
    length scales, a signal variance far above the targets' and the noise at its floor (or at
    `noise`)."""
    hyper = Hyper(
        "matern52",
        torch.log(torch.tensor([90.0, 35.0, 8.0, 1e5], dtype=torch.float64)),
        torch.log(torch.tensor(300.0, dtype=torch.float64)),
        torch.log(torch.tensor(noise, dtype=torch.float64)),
    )
    identity_in, identity_out = (
        Standardiser.identity(4, device="cpu"),
        Standardiser.identity(1, device="cpu"),
    )
    predictor, _ = condition(
        ModelShape(4, 1),
        hyper,
        torch.from_numpy(rows),
        torch.from_numpy(targets),
        identity_in,
        identity_out,
    )
    return predictor


def test_a_gps_spread_at_a_new_row_is_its_leave_one_out_spread_there() -> None:
    # The spread calibration divides by (leave-one-out, from the inverse's diagonal) and the
    # spread served at new rows must agree: one row left out of the conditioning rows is a new
    # row to the rest. With the noise at its floor, the served one once lost the posterior
    # variance in round-off and came out as the noise floor or several times off (coverage
    # 67.6 % on friedman2), and it added less noise than the factor had.
    rng = np.random.default_rng(3)
    rows = rng.uniform(-1.0, 1.0, size=(200, 4))
    targets = (np.sin(2.0 * rows[:, :1]) * rows[:, 1:2] + rows[:, 2:3] ** 2) / 0.5
    everything = gp_posterior(rows, targets)
    held_out = everything.held_out_spread(rows.astype(np.float32), np.arange(200))
    assert held_out is not None
    for left_out in range(0, 200, 20):
        keep = np.arange(200) != left_out
        rest = gp_posterior(rows[keep], targets[keep])
        served = rest.raw_spread(rows[left_out : left_out + 1].astype(np.float32))
        assert served[0, 0] == pytest.approx(held_out[left_out, 0], rel=1e-3), left_out


@pytest.mark.parametrize("noise", [1e-6, 1e-2])
def test_a_large_gps_spread_is_its_leave_one_out_spread_or_a_hair_wider(noise: float) -> None:
    # From 128 conditioning rows the spread comes from the kernel's leading eigenvectors, which
    # leave out a little explained variance: never narrower than the exact spread, at most
    # about a percent wider.
    rng = np.random.default_rng(4)
    rows = rng.uniform(-1.0, 1.0, size=(400, 4))
    targets = (np.sin(2.0 * rows[:, :1]) * rows[:, 1:2] + rows[:, 2:3] ** 2) / 0.5
    everything = gp_posterior(rows, targets, noise)
    held_out = everything.held_out_spread(rows.astype(np.float32), np.arange(400))
    assert held_out is not None
    for left_out in range(0, 400, 40):
        keep = np.arange(400) != left_out
        rest = gp_posterior(rows[keep], targets[keep], noise)
        served = rest.raw_spread(rows[left_out : left_out + 1].astype(np.float32))[0, 0]
        assert held_out[left_out, 0] * (1.0 - 1e-6) <= served <= held_out[left_out, 0] * 1.01


def test_the_leading_basis_is_a_fraction_of_the_rows_and_only_where_it_suffices() -> None:
    rng = np.random.default_rng(5)
    rows = torch.from_numpy(rng.uniform(-1.0, 1.0, size=(512, 3)))
    signal = torch.tensor(2.0, dtype=torch.float64)
    basis = leading_variance_basis(rows, signal, 1e-2, "rbf", tolerance=1e-3, max_share=0.5)
    assert basis is not None and basis.shape[0] == 512 and basis.shape[1] <= 256
    # Short length scales leave nothing to drop: every eigenvector matters, so no basis.
    rough = leading_variance_basis(rows * 40.0, signal, 1e-2, "rbf", tolerance=1e-3, max_share=0.5)
    assert rough is None


def test_a_calibrated_gp_covers_about_ninety_percent_of_new_targets() -> None:
    gp = calibrated_gp()
    inputs, targets = noisy(2000, seed=5)
    mean, std = gp.predict_with_std(inputs)
    assert np.allclose(mean, gp.predict(inputs), atol=1e-5)
    assert np.allclose(std, gp.predict_std(inputs), rtol=1e-4)
    covered = float(np.mean(np.abs(targets - mean) <= Z_90 * std))
    assert 0.83 <= covered <= 0.97
    # Far from the training inputs the GP knows less, and says so.
    far = gp.predict_std(np.array([[0.0, 0.0], [4.0, 4.0]], np.float32))
    assert far[1, 0] > 2.0 * far[0, 0]
    assert gp.out_of_range(np.array([[0.0, 0.0], [4.0, 4.0]], np.float32)).tolist() == [
        False,
        True,
    ]


def test_an_ensembles_deviation_is_the_spread_of_its_members() -> None:
    inputs, targets = noisy(40, seed=3)
    # `std`'s ensemble (the `mlp` type alone trains one member: no spread of its own).
    run = STD.families["mlp"].model_type.start_training(
        SHAPE, inputs, targets, start=None, seed=0, device="cpu"
    )
    for _ in range(20):
        run.step()
    mlp = run.best()
    probe = np.random.default_rng(0).uniform(-1, 1, size=(50, 2)).astype(np.float32)
    spread = mlp.predict_std(probe)
    assert spread.shape == (50, 1) and np.all(spread > 0)
    mlp.calibration = a_calibration()
    assert np.allclose(mlp.predict_std(probe), 0.25 * spread, rtol=1e-5)


def test_a_gp_suggests_distinct_rows_away_from_its_data_and_from_each_other() -> None:
    gp = calibrated_gp(rows=30)
    grid = np.stack(np.meshgrid(np.linspace(-2, 2, 21), np.linspace(-2, 2, 21)), -1)
    candidates = grid.reshape(-1, 2).astype(np.float32)
    chosen = gp.suggest_rows(candidates, 8)
    assert len(set(chosen)) == 8
    picked = candidates[chosen].astype(np.float64)
    gaps = np.linalg.norm(picked[:, None] - picked[None], axis=-1)[np.triu_indices(8, 1)]
    assert gaps.min() > 0.3  # no two near-copies in one batch


def test_duplicated_candidates_are_not_chosen_twice_by_the_variance_rule() -> None:
    # Two identical candidates and one apart: the second pick is the other one.
    prior = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    chosen = integrated_variance_batch(
        cross=prior, variances=np.diag(prior), column=lambda j: prior[:, j], noise=1e-6, k=2
    )
    assert sorted(chosen) in ([0, 2], [1, 2])


def test_farthest_point_weights_distance_by_spread() -> None:
    points = np.array([[0.0], [1.0], [1.1], [5.0]])
    chosen = spread_weighted_farthest_batch(
        standardised=points, spread=np.array([1.0, 3.0, 1.0, 0.1]), k=3
    )
    assert chosen[0] == 1 and len(set(chosen)) == 3


def test_every_kind_suggests_k_distinct_rows_by_default() -> None:
    candidates = np.random.default_rng(2).uniform(-1, 1, size=(40, 2)).astype(np.float32)
    for name in ("linear", "mlp"):
        chosen = get_model_type(name).initial(SHAPE, seed=0).suggest_rows(candidates, 40)
        assert sorted(chosen) == list(range(40))


def test_skin_weights_answer_their_inner_models_deviation_around_valid_rows() -> None:
    gp = calibrated_gp()
    weights = WeightsPredictor(gp, max_influences=None)
    probe = np.array([[0.1, 0.2], [4.0, 4.0]], np.float32)
    mean, std = weights.predict_with_std(probe)
    assert np.allclose(mean, weights.predict(probe))
    assert np.allclose(mean, 1.0)  # one output: every valid row is [1]
    assert np.allclose(std, gp.predict_std(probe), rtol=1e-5) and np.all(std > 0)
    assert np.allclose(weights.predict_std(probe), std, rtol=1e-5)
    assert weights.out_of_range(probe).tolist() == [False, True]
    candidates = np.random.default_rng(1).uniform(-2, 2, size=(30, 2)).astype(np.float32)
    assert weights.suggest_rows(candidates, 5) == gp.suggest_rows(candidates, 5)


def test_a_compressed_models_deviation_follows_its_coefficients_along_the_shapes() -> None:
    # Two coefficients, three outputs; the coefficient model's deviation is a constant per
    # coefficient (a blend's), 0.5 and 2.0.
    two = ModelShape(2, 2)
    member = get_model_type("linear").initial(two, seed=0)
    inner = BlendPredictor(shape=two, members=[member], weights=[1.0])
    inner.calibration = Calibration(np.array([0.5, 2.0]), np.full(2, -1.0), np.full(2, 1.0))
    shapes = np.array([[1.0, -2.0, 0.0], [0.0, 1.0, 3.0]], np.float32)
    model = CompressedPredictor(
        shape=ModelShape(2, 3), shapes=shapes, mean=np.zeros(3, np.float32), inner=inner
    )
    probe = np.array([[0.1, 0.2], [0.5, -0.5], [3.0, 0.0]], np.float32)
    mean, std = model.predict_with_std(probe)
    assert np.allclose(mean, model.predict(probe), atol=1e-5)
    coefficient_std = inner.predict_std(probe).astype(np.float64)
    expected = np.sqrt(np.square(coefficient_std) @ np.square(shapes.astype(np.float64)))
    assert np.allclose(std, expected, rtol=1e-5) and np.all(std > 0)
    assert np.allclose(model.predict_std(probe), std, rtol=1e-5)
    assert model.out_of_range(probe).tolist() == [False, False, True]
