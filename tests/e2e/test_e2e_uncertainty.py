"""Uncertainty and sample suggestions end to end through `sgt serve` and `sgt.client`
(docs/uncertainty.md): a trained model's std covers held-out targets and grows outside the
training range, over JSON and binary alike; suggest answers distinct indices and refuses bad
candidates with the contract's exceptions."""

from __future__ import annotations

import numpy as np
import pytest
from e2e_server import Session, SgtServer

from factories import make_samples
from sgt.client import Client, FindModelException, RunWeightsNetException

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONVERGENCE_DEADLINE_SECONDS = 120.0


def test_std_and_suggestions_of_a_trained_model(server: SgtServer, alice: Session) -> None:
    binary = Client(server.base_url, alice.secret_id, alice.secret_key, binary=True)
    plain = Client(server.base_url, alice.secret_id, alice.secret_key, binary=False)
    inputs, targets = make_samples(60, seed=11)
    plain.create_model("unc", "e2e", in_size=3, out_size=2)
    plain.upload_train_data("unc", "e2e", inputs=inputs, labels=targets)
    alice.wait_for_state(
        "unc", "converged", app_name="e2e", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
    )

    test_x, test_y = make_samples(400, seed=12)
    answer = plain.run("unc", "e2e", test_x, return_std=True)
    assert answer["mean"] == plain.run("unc", "e2e", test_x)
    mean, std = np.array(answer["mean"]), np.array(answer["std"])
    assert std.shape == (400, 2) and np.all(std > 0)
    covered = float(np.mean(np.abs(test_y - mean) <= 1.645 * std))
    print(f"\ne2e uncertainty: 90 % interval covers {100 * covered:.1f} % of held-out targets")
    assert 0.75 <= covered <= 0.99
    assert answer["out_of_range"] == [False] * 400

    via_binary = binary.run_with_std("unc", "e2e", test_x)
    assert np.allclose(via_binary["std"], std, rtol=1e-6)
    assert via_binary["out_of_range"] == answer["out_of_range"]
    far = binary.run_with_std("unc", "e2e", [[0.0, 0.0, 0.0], [6.0, -6.0, 6.0]])
    assert far["out_of_range"] == [False, True]
    # Out of range, the interval is at least as wide as the training targets' own spread.
    assert np.all(np.array(far["std"][1]) >= 0.999 * targets.std(axis=0))

    pool = np.random.default_rng(3).uniform(-1.0, 1.0, size=(200, 3))
    for client in (plain, binary):
        chosen = client.suggest_samples("unc", "e2e", pool, 10)
        assert len(set(chosen)) == 10 and all(0 <= index < 200 for index in chosen)


def test_bad_suggest_requests_fail_as_the_contract_says(server: SgtServer, alice: Session) -> None:
    client = Client(server.base_url, alice.secret_id, alice.secret_key)
    client.create_model("fresh", "e2e", in_size=3, out_size=1)
    with pytest.raises(RunWeightsNetException, match="k is 3"):
        client.suggest_samples("fresh", "e2e", [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]], 3)
    with pytest.raises(RunWeightsNetException, match="in_size=3"):
        client.suggest_samples("fresh", "e2e", [[0.0, 0.0]], 1)
    with pytest.raises(RunWeightsNetException, match="k is 0"):
        client.suggest_samples("fresh", "e2e", [[0.0, 0.0, 0.0]], 0)
    with pytest.raises(FindModelException):
        client.suggest_samples("nobody", "e2e", [[0.0, 0.0, 0.0]], 1)
    with pytest.raises(RunWeightsNetException):
        client.run("fresh", "e2e", [[0.0, 0.0]], return_std=True)
    # An untrained model still answers every shape.
    answer = client.run("fresh", "e2e", [[0.0, 0.0, 0.0]], return_std=True)
    assert len(answer["mean"]) == len(answer["std"]) == len(answer["out_of_range"]) == 1
