"""The training status's error figures in target units: recomputed here from the served weights
and the run's own validation rows, and the cases without figures (too few rows, too many
outputs for the per-output list).

A model is trained through the services and the real worker on a SQLite file; the validation
rows are found as `mlp` finds them (`split_holdout` with the model's seed), the served weights
answer through `run_model`, and numpy recomputes MAE, p95 and max."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from factories import make_model, make_samples, make_user
from sgt.config import Settings
from sgt.domain.training import MAX_PER_OUTPUT_ERRORS, TrainingStatus
from sgt.ml.numerics.fitting import split_holdout
from sgt.services import samples
from sgt.services.context import ServiceContext
from sgt.services.inference import run_model
from sgt.services.users import CurrentUser
from sgt.storage.queue import TrainingQueue
from sgt.storage.tables import ModelRow
from sgt.training.timings import WorkerTimings
from sgt.training.trainer import validation_errors
from sgt.training.worker import Worker

# Targets far from unit scale, so that standardised figures could not pass for target units.
TARGET_SCALE, TARGET_OFFSET = 250.0, -40.0
# Predictions are float32: their rounding (relative to the targets' size) bounds the agreement.
RELATIVE = 1e-5


def train(ctx: ServiceContext, settings: Settings, *, run_seconds: float) -> None:
    timings = WorkerTimings.from_settings(settings)
    timings = WorkerTimings(**{**timings.__dict__, "max_train_seconds": run_seconds})
    queue = TrainingQueue(ctx.db, worker_name="test-trainer", lease_seconds=timings.lease_seconds)
    assert Worker(queue, timings=timings).train_next()


def trained_mlp(
    ctx: ServiceContext, settings: Settings, user: CurrentUser, rows: int
) -> tuple[str, np.ndarray, np.ndarray]:
    name = make_model(ctx, user, model_type="mlp")
    inputs, targets = make_samples(rows, seed=3)
    targets = (targets * TARGET_SCALE + TARGET_OFFSET).astype(np.float32)
    samples.upload_samples(ctx, user, app_name="app", name=name, train_data=(inputs, targets))
    train(ctx, settings, run_seconds=2.0)
    return name, inputs, targets


def seed_of(ctx: ServiceContext, name: str) -> int:
    with ctx.db.read() as session:
        return int(session.execute(select(ModelRow.seed).where(ModelRow.name == name)).scalar_one())


def assert_close(actual: float | None, expected: float, *, size: float) -> None:
    assert actual is not None
    assert actual == pytest.approx(expected, rel=RELATIVE, abs=RELATIVE * size)


def test_the_figures_are_the_served_weights_errors_on_the_validation_rows(
    ctx: ServiceContext, settings: Settings
) -> None:
    alice = make_user(ctx)
    name, inputs, targets = trained_mlp(ctx, settings, alice, rows=80)
    _, validation = split_holdout(len(inputs), seed=seed_of(ctx, name))
    served = run_model(ctx, alice, app_name="app", name=name, data=inputs[validation])
    absolute = np.abs(served.astype(np.float64) - targets[validation].astype(np.float64))
    size = float(np.abs(targets).max())

    status = samples.read_training_status(ctx, alice, app_name="app", name=name)

    assert status.val_rows == len(validation) == 16
    assert_close(status.val_mae, float(absolute.mean()), size=size)
    assert_close(status.val_p95_abs_error, float(np.percentile(absolute, 95)), size=size)
    assert_close(status.val_max_abs_error, float(absolute.max()), size=size)
    assert status.val_mae_per_output is not None
    for actual, expected in zip(status.val_mae_per_output, absolute.mean(axis=0), strict=True):
        assert_close(actual, float(expected), size=size)
    # In target units: far above what the same weights err by on standardised targets.
    assert status.val_mae > 10 * float(np.sqrt(status.val_loss or 0.0))


def test_without_validation_rows_the_figures_are_null(
    ctx: ServiceContext, settings: Settings
) -> None:
    alice = make_user(ctx)
    name, _, _ = trained_mlp(ctx, settings, alice, rows=6)  # too few rows for a held-out split

    status = samples.read_training_status(ctx, alice, app_name="app", name=name)

    assert status.trained_sample_count == 6, "weights were served"
    assert_no_figures(status)


def test_a_new_upload_keeps_the_served_weights_figures(
    ctx: ServiceContext, settings: Settings
) -> None:
    alice = make_user(ctx)
    name, _, _ = trained_mlp(ctx, settings, alice, rows=80)
    before = samples.read_training_status(ctx, alice, app_name="app", name=name)
    more = make_samples(5, seed=9)
    samples.upload_samples(ctx, alice, app_name="app", name=name, train_data=more)

    after = samples.read_training_status(ctx, alice, app_name="app", name=name)

    assert after.sample_count == 85
    assert (after.val_rows, after.val_mae) == (before.val_rows, before.val_mae)


def assert_no_figures(status: TrainingStatus) -> None:
    figures = (
        status.val_rows,
        status.val_mae,
        status.val_p95_abs_error,
        status.val_max_abs_error,
        status.val_mae_per_output,
    )
    assert figures == (None,) * 5


def test_residuals_are_scaled_per_output_into_target_units() -> None:
    rows = np.array([4, 1, 7])
    standardised = np.array([[0.5, -1.0], [-0.25, 2.0], [1.0, 0.0]])
    scale = np.array([2.0, 10.0])

    errors = validation_errors((rows, standardised), target_scale=scale)

    absolute = np.abs(standardised) * scale
    assert errors is not None
    assert errors.rows == 3
    assert errors.mae_per_output == pytest.approx([1.1666666666666667, 10.0])
    assert errors.mae == pytest.approx(absolute.mean())
    assert errors.max_abs_error == 20.0
    assert errors.p95_abs_error == pytest.approx(np.percentile(absolute, 95))


def test_no_rows_no_figures() -> None:
    scale = np.ones(2)
    assert validation_errors(None, target_scale=scale) is None
    assert validation_errors((np.zeros(0, int), np.zeros((0, 2))), target_scale=scale) is None


def test_many_outputs_keep_the_overall_figures_without_the_per_output_list() -> None:
    outputs = MAX_PER_OUTPUT_ERRORS + 1
    residuals = (np.arange(3), np.full((3, outputs), -0.5))

    errors = validation_errors(residuals, target_scale=np.full(outputs, 4.0))

    assert errors is not None and errors.mae_per_output is None
    assert (errors.mae, errors.p95_abs_error, errors.max_abs_error) == (2.0, 2.0, 2.0)
    at_the_bound = (np.arange(3), np.zeros((3, MAX_PER_OUTPUT_ERRORS)))
    kept = validation_errors(at_the_bound, target_scale=np.ones(MAX_PER_OUTPUT_ERRORS))
    assert kept is not None and kept.mae_per_output is not None
    assert len(kept.mae_per_output) == MAX_PER_OUTPUT_ERRORS
