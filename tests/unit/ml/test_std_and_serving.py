"""How `std` chooses and loads, and how predictors behave when served: large batches, threads."""

from __future__ import annotations

import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from sgt.ml.base import ModelShape, Predictor, TrainingRun
from sgt.ml.checkpoints import CheckpointUnreadable, pack_checkpoint, unpack_checkpoint
from sgt.ml.numerics.stacking import beats, stacked_shares, stacking_weights
from sgt.ml.registry import STD, get_model_type
from sgt.ml.types import std_choice
from sgt.ml.types.blend import BlendPredictor
from sgt.ml.types.std_choice import BLEND_MAX_ROWS, Candidate, pick_alone
from sgt.ml.types.std_run import StdRun

candidate_kinds = STD.candidate_kinds


def trained(name: str, rows: int = 80, seed: int = 0, max_steps: int = 400) -> Predictor:
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 2)).astype(np.float32)
    targets = np.cos(2.0 * inputs[:, :1]) + inputs[:, 1:] ** 2
    run: TrainingRun = get_model_type(name).start_training(
        ModelShape(2, 1), inputs, targets.astype(np.float32), start=None, seed=seed, device="cpu"
    )
    for _ in range(max_steps):
        if run.step().is_converged:
            break
    return run.best()


@pytest.mark.parametrize("name", ["gp", "linear", "mlp"])
def test_std_loads_every_kind_it_may_write(name: str) -> None:
    predictor = trained(name, max_steps=5)
    probe = np.linspace(-1.0, 1.0, 20, dtype=np.float32).reshape(10, 2)
    loaded = get_model_type("std").load(predictor.to_bytes(), device="cpu")
    assert np.array_equal(loaded.predict(probe), predictor.predict(probe))


def test_a_type_refuses_another_types_checkpoint() -> None:
    with pytest.raises(CheckpointUnreadable):
        get_model_type("gp").load(trained("linear").to_bytes(), device="cpu")


def test_candidates_depend_on_the_row_count() -> None:
    assert candidate_kinds(5, None) == ["gp", "linear"]
    # The forest only ever serves in a blend, and only on the rows its bootstrap samples hold.
    assert candidate_kinds(30, None) == ["gp", "linear", "mlp", "forest"]
    assert candidate_kinds(300, None) == ["gp", "linear", "mlp"]
    assert candidate_kinds(500, None) == ["gp", "linear", "mlp"]
    # Gradient-boosted trees only beyond the blend's rows, the GP only up to 3,000.
    assert candidate_kinds(501, None) == ["gbt", "gp", "linear", "mlp"]
    assert candidate_kinds(100_000, None) == ["gbt", "linear", "mlp"]
    assert candidate_kinds(500, get_model_type("mlp").initial(ModelShape(2, 1), seed=0))[0] == "mlp"


def test_a_challenger_must_win_by_more_than_noise() -> None:
    rows = np.arange(50)
    rng = np.random.default_rng(1)
    default = rng.normal(size=(50, 1))
    slightly_better = default * 0.98 + rng.normal(scale=0.3, size=(50, 1))
    clearly_better = default * 0.3
    assert beats((rows, clearly_better), (rows, default)) > 0.0
    assert beats((rows, slightly_better), (rows, default)) < 0.0
    # Residuals on disjoint rows cannot be compared.
    assert beats((rows + 100, clearly_better), (rows, default)) == -np.inf


def test_served_alone_the_default_gives_way_only_to_a_candidate_twice_as_good() -> None:
    rows = np.arange(1000)
    default = np.random.default_rng(2).normal(size=(1000, 3))

    def candidate(kind: str, residuals: np.ndarray) -> Candidate:
        scored = Candidate(kind)
        scored.residuals = (rows, residuals)
        return scored

    trees = candidate("gbt", default)
    # MSE 1.75x lower: the MLPs' margin on skin weights, which did not hold on another pose.
    better = candidate("mlp", default / np.sqrt(1.75))
    assert pick_alone([trees, better], "gbt") is trees
    far_better = candidate("mlp", default / np.sqrt(2.5))
    assert pick_alone([trees, far_better], "gbt") is far_better
    # Without a default among them the lower error wins as before.
    assert pick_alone([candidate("linear", default), better], "gbt") is better


def test_std_keeps_the_gp_on_smooth_data() -> None:
    run = get_model_type("std").start_training(
        ModelShape(2, 1),
        *_smooth(BLEND_MAX_ROWS + 20),
        start=None,
        seed=2,
        device="cpu",
    )
    while not run.step().is_converged:
        pass
    assert getattr(run.best(), "kind", None) == "gp"


def converged_std(inputs: np.ndarray, targets: np.ndarray) -> StdRun:
    shape = ModelShape(inputs.shape[1], targets.shape[1])
    run = STD.start_training(shape, inputs, targets, start=None, seed=2, device="cpu")
    while not run.step().is_converged:
        pass
    return run


@functools.cache
def noisy_blend_run() -> StdRun:
    """`std` converged on `_noisy(30)`: a blend. Trained once for the tests that only read it
    (a converged run's further steps change nothing); each training took about 10 s."""
    return converged_std(*_noisy(30))


def test_std_blends_its_candidates_on_few_rows() -> None:
    run = noisy_blend_run()
    served = run.best()
    assert isinstance(served, BlendPredictor) and run.chosen_kind == "blend"
    kinds = [getattr(member, "kind", None) for member in served.members]
    assert len(kinds) >= 2 and set(kinds) <= {"gp", "linear", "mlp", "forest"}
    assert sum(served.weights) == pytest.approx(1.0) and min(served.weights) > 0.0
    probe = np.random.default_rng(5).uniform(-1.0, 1.0, size=(9, 3)).astype(np.float32)
    expected = sum(
        w * m.predict(probe) for w, m in zip(served.weights, served.members, strict=True)
    )
    np.testing.assert_allclose(served.predict(probe), expected, rtol=1e-5, atol=1e-6)


def test_std_gives_trees_a_share_where_thresholds_matter() -> None:
    rng = np.random.default_rng(40)
    inputs = rng.uniform(-1.0, 1.0, size=(40, 4)).astype(np.float32)
    jumps = (inputs[:, :1] > 0.3).astype(np.float32) + (inputs[:, 1:2] > -0.2)
    targets = (jumps + 0.1 * rng.normal(size=(40, 1))).astype(np.float32)
    served = converged_std(inputs, targets).best()
    assert isinstance(served, BlendPredictor)
    shares = {
        getattr(m, "kind", None): w for m, w in zip(served.members, served.weights, strict=True)
    }
    assert shares.get("forest", 0.0) >= 0.1


def test_a_blend_round_trips_through_its_checkpoint() -> None:
    served = noisy_blend_run().best()
    loaded = STD.load(served.to_bytes(), device="cpu")
    assert isinstance(loaded, BlendPredictor)
    probe = np.random.default_rng(6).uniform(-1.0, 1.0, size=(11, 3)).astype(np.float32)
    assert np.array_equal(loaded.predict(probe), served.predict(probe))


def test_a_blend_resumes_each_member_from_its_weights() -> None:
    first = noisy_blend_run().best()
    assert isinstance(first, BlendPredictor)
    more_inputs, more_targets = _noisy(45)
    run = STD.start_training(
        ModelShape(3, 1), more_inputs, more_targets, start=first, seed=2, device="cpu"
    )
    # Until a candidate validates on the new rows, the blend keeps answering.
    assert run.best() is first
    while not run.step().is_converged:
        pass
    assert isinstance(run.best(), BlendPredictor) and run.best() is not first


def test_a_blend_checkpoint_with_a_missing_member_is_refused() -> None:
    served = noisy_blend_run().best()
    assert isinstance(served, BlendPredictor)
    broken = BlendPredictor(shape=served.shape, members=served.members[:1], weights=[1.0])
    envelope = unpack_checkpoint(broken.to_bytes(), device="cpu")
    payload = dict(envelope.payload, weights=torch.tensor([0.5, 0.5], dtype=torch.float64))
    data = pack_checkpoint(kind="blend", shape=served.shape, payload=payload)
    with pytest.raises(CheckpointUnreadable):
        STD.load(data, device="cpu")


def test_stacking_weighs_what_lowers_the_blended_error() -> None:
    rng = np.random.default_rng(8)
    good, bad = rng.normal(scale=0.2, size=(60, 2)), rng.normal(scale=2.0, size=(60, 2))
    assert stacking_weights([bad, good]).tolist() == [0.0, 1.0]
    # Two equally good candidates with independent errors: the average halves the error.
    other = rng.normal(scale=0.2, size=(60, 2))
    weights = stacking_weights([good, other, bad])
    assert weights.sum() == pytest.approx(1.0)
    assert weights[0] == pytest.approx(0.5, abs=0.15) and weights[2] == 0.0


def test_a_far_worse_candidate_gets_no_share_even_where_its_errors_cancel() -> None:
    good = np.random.default_rng(9).normal(scale=0.2, size=(40, 1))
    # 3 times the error with the opposite sign: 0.75 good + 0.25 bad would be exact on these
    # rows, a coincidence that new rows would not repeat.
    bad = -3.0 * good
    assert stacking_weights([good, bad]).tolist() == [0.75, 0.25]
    assert stacked_shares([good, bad]).tolist() == [1.0, 0.0]
    close = np.random.default_rng(10).normal(scale=0.2, size=(40, 1))  # as good, independent
    assert stacked_shares([good, close, bad])[2] == 0.0
    assert stacked_shares([good, close, bad])[1] > 0.0


def test_far_worse_candidates_are_not_cross_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    # Noiseless and smooth: the others' errors are many times the GP's, so none could take a share
    # of a blend. Leaving them out skips every fold run and changes nothing served.
    inputs, targets = _smooth(30)
    screened = converged_std(inputs, targets)
    monkeypatch.setattr(std_choice, "SCREEN_ERROR_RATIO", math.inf)
    everyone = converged_std(inputs, targets)
    assert screened.chosen_kind == everyone.chosen_kind == "gp"
    probe = np.random.default_rng(7).uniform(-1.0, 1.0, size=(13, 2)).astype(np.float32)
    assert np.array_equal(screened.best().predict(probe), everyone.best().predict(probe))
    assert screened.step().steps < everyone.step().steps


def test_blend_weights_come_from_rows_each_member_did_not_see() -> None:
    inputs, targets = _noisy(30)
    run = noisy_blend_run()
    served = run.best()
    assert isinstance(served, BlendPredictor)
    # Every member was retrained on 5 folds: 4 main runs plus 20 fold runs, several steps each.
    assert run.step().steps > 24
    # The validation loss reported is that of out-of-fold predictions, which are worse than
    # what each member scores on the rows it was trained on.
    progress = run.step()
    assert progress.val_loss is not None
    in_sample = float(np.mean((served.predict(inputs) - targets) ** 2) / np.var(targets))
    assert progress.val_loss > in_sample


def test_std_reports_the_served_blends_out_of_fold_residuals() -> None:
    run = noisy_blend_run()
    residuals = run.validation_residuals()
    assert residuals is not None
    rows, values = residuals
    assert np.array_equal(rows, np.arange(30)) and values.shape == (30, 1)
    # The blend's validation loss is the mean square of exactly these residuals.
    assert float(np.mean(values**2)) == pytest.approx(run.step().val_loss, rel=1e-9)


def test_a_blend_before_cross_validation_errs_by_its_weighted_residuals_on_shared_rows() -> None:
    first, second = std_choice.Candidate("gp"), std_choice.Candidate("mlp")
    first.residuals = (np.array([0, 1, 2, 3]), np.array([[1.0], [2.0], [3.0], [4.0]]))
    second.residuals = (np.array([3, 1]), np.array([[-4.0], [-2.0]]))

    plan = std_choice.plan_blend([first, second])

    assert plan.residuals is not None
    rows, values = plan.residuals
    weight = plan.weights[0]
    assert rows.tolist() == [1, 3]
    np.testing.assert_allclose(values[:, 0], [2.0 * (2 * weight - 1), 4.0 * (2 * weight - 1)])


def _noisy(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """A weak signal in heavy noise: no family is clearly best on so few rows."""
    rng = np.random.default_rng(rows)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 3)).astype(np.float32)
    signal = inputs[:, :1] + 0.5 * np.sin(3.0 * inputs[:, 1:2])
    return inputs, (signal + rng.normal(scale=0.7, size=(rows, 1))).astype(np.float32)


def _smooth(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rows)
    inputs = rng.uniform(-1.0, 1.0, size=(rows, 2)).astype(np.float32)
    return inputs, (np.sin(3.0 * inputs[:, :1]) * inputs[:, 1:]).astype(np.float32)


@pytest.mark.parametrize("name", ["gp", "linear", "mlp"])
def test_large_batches_match_small_ones(name: str) -> None:
    predictor = trained(name, max_steps=20)
    inputs = np.random.default_rng(3).uniform(-1.0, 1.0, size=(50_000, 2)).astype(np.float32)
    whole = predictor.predict(inputs)
    assert whole.shape == (50_000, 1) and whole.dtype == np.float32
    np.testing.assert_allclose(whole[-7:], predictor.predict(inputs[-7:]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["std", "gp", "mlp"])
def test_concurrent_predictions_agree(name: str) -> None:
    predictor = trained(name, max_steps=20)
    inputs = np.random.default_rng(4).uniform(-1.0, 1.0, size=(2000, 2)).astype(np.float32)
    expected = predictor.predict(inputs)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: predictor.predict(inputs), range(8)))
    for result in results:
        assert np.array_equal(result, expected)


@pytest.mark.parametrize("name", ["std", "gp", "mlp", "linear"])
def test_an_unusable_start_is_ignored(name: str) -> None:
    # A start of another shape (or family) cannot be resumed from; training starts afresh.
    other = get_model_type("linear").initial(ModelShape(5, 1), seed=0)
    inputs, targets = _smooth(40)
    run = get_model_type(name).start_training(
        ModelShape(2, 1), inputs, targets, start=other, seed=0, device="cpu"
    )
    for _ in range(30):
        run.step()
    assert run.best().predict(inputs).shape == (40, 1)
