"""A corrective-shape model at production width through `sgt serve` and `sgt.client`: 3 joint
angles -> 150,000 vertex offsets (50,000 vertices), created, trained on a few dozen poses over
the binary path, and run on poses it never saw. How fast is measured by bench/deformer.py."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_server import Session, assert_error

from sgt.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUT_SIZE = 150_000
# A bound on the wait, not a claim about speed: a run ends within SGT_MAX_TRAIN_SECONDS (60 s).
CONVERGENCE_DEADLINE_SECONDS = 120.0


def poses(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(count, 3)).astype(np.float32)


def offsets(angles: np.ndarray) -> np.ndarray:
    """Three bulges over the mesh, each growing with a nonlinear function of the bends."""
    bulges = np.random.default_rng(2026).normal(size=(3, OUT_SIZE)).astype(np.float32)
    drivers = np.stack(
        [np.sin(angles[:, 0]), angles[:, 1] * angles[:, 2], angles[:, 2] ** 2], axis=1
    )
    return (drivers @ bulges + 0.25).astype(np.float32)


def test_a_150000_output_model_is_created_trained_and_run(alice: Session) -> None:
    client = Client(alice.server.base_url, alice.secret_id, alice.secret_key)
    client.create_model("mesh", "deform", in_size=3, out_size=OUT_SIZE)
    train_x, test_x = poses(30, seed=1), poses(8, seed=2)
    train_y, test_y = offsets(train_x), offsets(test_x)
    untrained = np.array(client.run("mesh", "deform", test_x[:1]), dtype=np.float32)
    assert untrained.shape == (1, OUT_SIZE)

    client.upload_train_data("mesh", "deform", inputs=train_x, labels=train_y)
    status = alice.wait_for_state(
        "mesh", "converged", app_name="deform", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
    )

    predicted = np.array(client.run("mesh", "deform", test_x), dtype=np.float32)
    assert predicted.shape == (8, OUT_SIZE)
    error = float(np.sqrt(np.mean((predicted - test_y) ** 2)))
    spread = float(np.sqrt(np.mean((train_y.mean(axis=0) - test_y) ** 2)))
    print(f"\ncorrective shapes: held-out RMSE {error:.4f}, the mean's {spread:.4f}")
    assert error < 0.2 * spread
    assert status["sample_count"] == 30
    one = np.array(client.run("mesh", "deform", test_x[3:4]), dtype=np.float32)
    assert np.allclose(one[0], predicted[3], rtol=1e-5, atol=1e-5)  # one pose as in a batch

    # Every offset comes with a standard deviation (the coefficients' along the shapes).
    with_std = client.run_with_std("mesh", "deform", np.vstack([test_x[:2], [[9.0, 9.0, 9.0]]]))
    mean, std = (np.array(with_std[key], dtype=np.float32) for key in ("mean", "std"))
    assert mean.shape == std.shape == (3, OUT_SIZE)
    assert np.allclose(mean[:2], predicted[:2], rtol=1e-5, atol=1e-5)
    assert np.all(std >= 0) and float(std[:2].mean()) > 0
    assert with_std["out_of_range"] == [False, False, True]


def test_a_model_too_big_for_memory_is_still_refused_naming_the_figure(alice: Session) -> None:
    # 16,384 inputs keep a coefficient model (the GP's stored rows) beyond the default bound.
    reply = alice.post(
        "/public/create_sgt_model",
        name="huge",
        app_name="deform",
        model_type="std",
        in_size=16_384,
        out_size=300_000,
        client_data=None,
        is_public=False,
    )
    message = assert_error(reply, "CreateWeightsNetException", "parameters", "50,000,000")
    assert "300000" in message.replace(",", "")
    assert alice.my_models() == []
