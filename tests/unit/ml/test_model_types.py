"""Contract tests every built-in model type must pass: registry, sizes, checkpoints, learning."""

from __future__ import annotations

import numpy as np
import pytest

from sgt.ml.base import ModelShape, ModelType, Predictor, TrainingRun
from sgt.ml.families.mlp import MlpConfig, ensemble_family
from sgt.ml.registry import STD, get_model_type, model_type_names

TYPE_NAMES = ["std", "gp", "mlp", "linear", "weights"]


def smooth_data(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three inputs, two smooth targets of very different scales."""
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-2.0, 2.0, size=(rows, 3)).astype(np.float32)
    first = np.sin(inputs[:, 0]) + 0.5 * inputs[:, 1] ** 2
    second = 100.0 + 30.0 * np.tanh(inputs[:, 2] - inputs[:, 0])
    return inputs, np.stack([first, second], axis=1).astype(np.float32)


def train_to_convergence(run: TrainingRun, max_steps: int = 5000) -> Predictor:
    for _ in range(max_steps):
        if run.step().is_converged:
            break
    return run.best()


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_type_is_registered_with_a_description(name: str) -> None:
    model_type = get_model_type(name)
    assert model_type.name == name
    assert len(model_type.description) > 40
    assert name in model_type_names()


def test_std_is_listed_first() -> None:
    assert model_type_names()[0] == "std"


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_parameter_count_is_cheap_and_monotone(name: str) -> None:
    model_type = get_model_type(name)
    # A count by formula (bench/parameter_count.py times it): an exact integer, at least one
    # parameter per input and per output however wide the model.
    huge = model_type.parameter_count(ModelShape(100_000, 100_000))
    assert isinstance(huge, int) and huge >= 200_000
    small = model_type.parameter_count(ModelShape(3, 2))
    assert 0 < small < model_type.parameter_count(ModelShape(30, 2)) < huge
    assert small < model_type.parameter_count(ModelShape(3, 20))


@pytest.mark.parametrize("name", TYPE_NAMES)
@pytest.mark.parametrize("rows", [0, 1, 7])
def test_initial_predicts_the_declared_shape(name: str, rows: int) -> None:
    predictor = get_model_type(name).initial(ModelShape(5, 3), seed=1)
    outputs = predictor.predict(np.zeros((rows, 5), dtype=np.float32))
    assert outputs.shape == (rows, 3)
    assert outputs.dtype == np.float32
    assert np.all(np.isfinite(outputs))


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_checkpoint_round_trip_predicts_identically(name: str) -> None:
    model_type = get_model_type(name)
    inputs, targets = smooth_data(60, seed=2)
    run = model_type.start_training(
        ModelShape(3, 2), inputs, targets, start=None, seed=3, device="cpu"
    )
    for _ in range(3):
        run.step()
    predictor = run.best()
    loaded = model_type.load(predictor.to_bytes(), device="cpu")
    probe = smooth_data(50, seed=4)[0]
    assert np.array_equal(loaded.predict(probe), predictor.predict(probe))
    assert loaded.predict(probe[:0]).shape == (0, 2)


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_initial_weights_round_trip(name: str) -> None:
    model_type = get_model_type(name)
    predictor = model_type.initial(ModelShape(4, 1), seed=5)
    probe = np.ones((3, 4), dtype=np.float32)
    loaded = model_type.load(predictor.to_bytes(), device="cpu")
    assert np.array_equal(loaded.predict(probe), predictor.predict(probe))


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_garbage_checkpoint_is_refused(name: str) -> None:
    with pytest.raises(ValueError):
        get_model_type(name).load(b"not a checkpoint", device="cpu")


@pytest.mark.parametrize("name", ["std", "gp", "mlp"])
def test_learns_a_smooth_function(name: str) -> None:
    inputs, targets = smooth_data(200, seed=6)
    run = get_model_type(name).start_training(
        ModelShape(3, 2), inputs, targets, start=None, seed=7, device="cpu"
    )
    predictor = train_to_convergence(run)
    test_inputs, test_targets = smooth_data(500, seed=8)
    errors = predictor.predict(test_inputs) - test_targets
    relative_rmse = np.sqrt((errors**2).mean(axis=0)) / test_targets.std(axis=0)
    assert np.all(relative_rmse < 0.15), relative_rmse


def test_linear_learns_a_noisy_plane() -> None:
    rng = np.random.default_rng(18)
    inputs = rng.normal(size=(200, 4)).astype(np.float32)
    targets = (inputs @ np.array([[1.0], [-2.0], [0.0], [0.5]]) + 3.0).astype(np.float32)
    noisy = targets + rng.normal(scale=0.1, size=targets.shape).astype(np.float32)
    predictor = train_to_convergence(
        get_model_type("linear").start_training(
            ModelShape(4, 1), inputs, noisy, start=None, seed=0, device="cpu"
        )
    )
    assert np.abs(predictor.predict(inputs) - targets).max() < 0.1


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_same_seed_gives_same_weights(name: str) -> None:
    model_type = get_model_type(name)
    inputs, targets = smooth_data(80, seed=9)
    checkpoints = []
    for _ in range(2):
        run = model_type.start_training(
            ModelShape(3, 2), inputs, targets, start=None, seed=11, device="cpu"
        )
        for _ in range(4):
            progress = run.step()
        checkpoints.append((run.best().predict(inputs), progress.val_loss))
    assert np.array_equal(checkpoints[0][0], checkpoints[1][0])
    assert checkpoints[0][1] == checkpoints[1][1]


def first_and_resumed(
    name: str, first_steps: int, rows: int = 240, model_type: ModelType | None = None
) -> tuple[Predictor, TrainingRun, TrainingRun]:
    """A predictor trained on 5/6 of the rows, a run resuming from it on all, and a fresh run;
    by `model_type` when given, else by the type called `name`."""
    model_type = model_type or get_model_type(name)
    shape = ModelShape(3, 2)
    inputs, targets = smooth_data(rows, seed=12)
    known = rows * 5 // 6
    first = train_to_convergence(
        model_type.start_training(
            shape, inputs[:known], targets[:known], start=None, seed=13, device="cpu"
        ),
        max_steps=first_steps,
    )
    resumed = model_type.start_training(shape, inputs, targets, start=first, seed=14, device="cpu")
    fresh = model_type.start_training(shape, inputs, targets, start=None, seed=14, device="cpu")
    return first, resumed, fresh


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_resumed_run_answers_like_its_start_before_stepping(name: str) -> None:
    first, resumed, _ = first_and_resumed(name, first_steps=30)
    # The statistics of the new data differ; the function of the raw inputs must not.
    probe = smooth_data(20, seed=15)[0]
    np.testing.assert_allclose(
        resumed.best().predict(probe), first.predict(probe), rtol=1e-4, atol=1e-3
    )


def test_resumed_mlp_continues_from_its_weights() -> None:
    _, resumed, fresh = first_and_resumed("mlp", first_steps=60)
    resumed_loss, fresh_loss = resumed.step().val_loss, fresh.step().val_loss
    assert resumed_loss is not None and fresh_loss is not None
    assert resumed_loss < 0.5 * fresh_loss


@pytest.mark.parametrize("name", ["gp", "std"])
def test_resumed_run_converges_sooner(name: str) -> None:
    # std's MLP ensemble trains from scratch either way; a small one keeps the test quick.
    small_std = STD.with_family(ensemble_family(MlpConfig(members=2, width=16, max_steps=30)))
    model_type = small_std if name == "std" else get_model_type(name)
    _, resumed, fresh = first_and_resumed(name, first_steps=5000, rows=72, model_type=model_type)
    steps = []
    for run in (resumed, fresh):
        for count in range(1, 5000):
            progress = run.step()
            if progress.is_converged:
                steps.append(count)
                break
        assert progress.val_loss is not None
    assert steps[0] < steps[1]


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_tiny_data_trains_without_validation(name: str) -> None:
    inputs, targets = smooth_data(4, seed=16)
    run = get_model_type(name).start_training(
        ModelShape(3, 2), inputs, targets, start=None, seed=17, device="cpu"
    )
    predictor = train_to_convergence(run, max_steps=3000)
    assert predictor.predict(inputs).shape == (4, 2)
    assert np.all(np.isfinite(predictor.predict(inputs)))
