"""The `weights` model type: skin weights by construction, for whatever its inner type serves."""

from __future__ import annotations

import numpy as np
import pytest

from sgt.errors import UnknownModelType
from sgt.ml.base import ModelShape, Predictor, TrainingRun
from sgt.ml.families import linear
from sgt.ml.numerics.simplex import project_to_simplex
from sgt.ml.registry import STD, WEIGHTS, get_model_type
from sgt.ml.types.weights import WeightsModelType, WeightsPredictor
from skin_mesh import invalid_rows, skin_mesh

SHAPE = ModelShape(21, 6)  # skin_mesh's 6 bones: 7 joints x (x, y, distance) inputs


def trained(model_type: WeightsModelType, rows: int = 400, seed: int = 0) -> Predictor:
    inputs, weights = skin_mesh(rows, seed=seed)
    run: TrainingRun = model_type.start_training(
        SHAPE, inputs, weights, start=None, seed=seed, device="cpu"
    )
    for _ in range(2000):
        if run.step().is_converged:
            break
    return run.best()


def test_the_registry_reads_max_influences_from_the_stored_type() -> None:
    plain = get_model_type("weights")
    limited = get_model_type("weights:3")
    assert plain is WEIGHTS and isinstance(limited, WeightsModelType)
    assert (limited.name, limited.max_influences, limited.inner) == ("weights", 3, STD)
    for stored in ("std:3", "weights:x", "weights:"):
        with pytest.raises(UnknownModelType):
            get_model_type(stored)


@pytest.mark.parametrize("limit", [None, 1, 2])
def test_predictions_on_another_mesh_are_skin_weights(limit: int | None) -> None:
    # Ridge regression alone is far from weights: negative entries, rows off 1.
    weights_type = WeightsModelType(inner=linear.LINEAR, max_influences=limit)
    predictor = trained(weights_type)
    other_mesh, truth = skin_mesh(1000, bend=0.2, seed=9)
    raw = predictor.inner.predict(other_mesh) if isinstance(predictor, WeightsPredictor) else None
    assert raw is not None and invalid_rows(raw) > 100
    predicted = predictor.predict(other_mesh)
    assert invalid_rows(predicted, max_nonzero=limit) == 0
    if limit is None:
        # The projection never moves a row away from the true weights.
        assert np.sqrt(np.mean((predicted - truth) ** 2)) <= np.sqrt(np.mean((raw - truth) ** 2))


def test_it_serves_the_projection_of_what_its_inner_type_trains() -> None:
    inputs, weights = skin_mesh(300, seed=1)
    inner_run = linear.LINEAR.start_training(
        SHAPE, inputs, weights, start=None, seed=2, device="cpu"
    )
    outer_run = WeightsModelType(inner=linear.LINEAR, max_influences=2).start_training(
        SHAPE, inputs, weights, start=None, seed=2, device="cpu"
    )
    while not inner_run.step().is_converged:
        pass
    while not outer_run.step().is_converged:
        pass
    probe = skin_mesh(50, seed=3)[0]
    expected = project_to_simplex(inner_run.best().predict(probe), max_nonzero=2)
    assert np.array_equal(outer_run.best().predict(probe), expected)


def test_the_checkpoint_keeps_max_influences_and_a_resumed_run_starts_from_it() -> None:
    weights_type = WeightsModelType(inner=linear.LINEAR, max_influences=2)
    predictor = trained(weights_type, rows=200)
    loaded = WeightsModelType(inner=linear.LINEAR).load(predictor.to_bytes(), device="cpu")
    assert isinstance(loaded, WeightsPredictor) and loaded.max_influences == 2
    probe = skin_mesh(40, seed=4)[0]
    assert np.array_equal(loaded.predict(probe), predictor.predict(probe))
    resumed = weights_type.start_training(
        SHAPE, *skin_mesh(200, seed=5), start=loaded, seed=1, device="cpu"
    )
    assert np.array_equal(resumed.best().predict(probe), predictor.predict(probe))


def test_untrained_weights_are_skin_weights() -> None:
    predictor = get_model_type("weights:2").initial(SHAPE, seed=0)
    assert invalid_rows(predictor.predict(skin_mesh(30, seed=6)[0]), max_nonzero=2) == 0
