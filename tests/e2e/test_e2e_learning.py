"""Learning end to end through `sgt.client`: upload a few hundred samples of a smooth 3 -> 2
function, wait (polling, with a deadline) for convergence, predict held-out inputs; upload
more and training resumes by itself. How long learning takes is measured by
`bench/e2e_timings.py`, never asserted here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from e2e_server import Session, SgtServer

from factories import make_samples, r_squared
from sgt.client import Client, FindModelException, RunWeightsNetException

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# A bound on the wait, not a claim about speed: a run ends within SGT_MAX_TRAIN_SECONDS (60 s).
CONVERGENCE_DEADLINE_SECONDS = 120.0


def test_a_smooth_function_is_learned(server: SgtServer, alice: Session) -> None:
    log_start = len(server.log)
    client = Client(server.base_url, alice.secret_id, alice.secret_key, chunk_rows=128)
    assert client.check_auth() is True
    inputs, targets = make_samples(400, seed=2026)
    train_x, train_y, test_x, test_y = inputs[:300], targets[:300], inputs[300:], targets[300:]
    client.create_model("smooth", "learn", in_size=3, out_size=2)
    before = np.array(client.run("smooth", "learn", test_x))

    client.upload_train_data("smooth", "learn", inputs=train_x, labels=train_y)
    status = alice.wait_for_state(
        "smooth", "converged", app_name="learn", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
    )

    predictions = np.array(client.run("smooth", "learn", test_x))
    score = r_squared(test_y, predictions)
    print(
        f"\ne2e learning: held-out R^2 = {score:.4f} "
        f"({status['steps']} steps, val_loss {status['val_loss']}); "
        f"validation MAE {status['val_mae']} over {status['val_rows']} rows"
    )
    assert score > 0.95
    assert r_squared(test_y, before) < 0.5, "the untrained answer was not already right"
    assert status["sample_count"] == 300
    assert status["loss_history"], "the run reported its losses"
    # Errors in the targets' own units, on rows the served weights were not fitted to.
    assert 0 < status["val_rows"] <= 300
    assert 0 < status["val_mae"] <= status["val_p95_abs_error"] <= status["val_max_abs_error"]
    assert status["val_mae"] < 0.2 * float(train_y.std()), "an easy function is learned well"
    assert len(status["val_mae_per_output"]) == 2
    assert np.array(client.run("smooth", "learn", test_x)).tolist() == predictions.tolist()

    # More data resumes training, from the current weights, with no other request.
    more_x, more_y = make_samples(100, seed=7)
    client.upload_train_data("smooth", "learn", inputs=more_x, labels=more_y)
    assert client.train_status("smooth", "learn")["state"] in {"queued", "training"}
    resumed = alice.wait_for_state(
        "smooth", "converged", app_name="learn", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
    )
    assert (resumed["sample_count"], resumed["trained_sample_count"]) == (400, 400)
    assert resumed["steps"] > status["steps"], "steps accumulate across runs"
    assert r_squared(test_y, np.array(client.run("smooth", "learn", test_x))) > 0.95

    log = server.log[log_start:].splitlines()
    failures = [line for line in log if "sgt.worker" in line and "failed" in line]
    assert failures == [], "no training run failed on this clean, smooth data"

    with pytest.raises(RunWeightsNetException):
        client.run("smooth", "learn", [[1.0, 2.0]])
    client.delete_model("smooth", "learn")
    with pytest.raises(FindModelException):
        client.train_status("smooth", "learn")


def test_more_data_for_a_converged_model_improves_it_and_it_converges_again(
    server: SgtServer, alice: Session
) -> None:
    client = Client(server.base_url, alice.secret_id, alice.secret_key, chunk_rows=256)
    inputs, targets = make_samples(600, seed=31)
    test_x, test_y = inputs[400:], targets[400:]
    client.create_model("growing", "learn", in_size=3, out_size=2)

    def held_out_rmse() -> float:
        predictions = np.array(client.run("growing", "learn", test_x))
        return float(np.sqrt(np.mean((predictions - test_y) ** 2)))

    def converged() -> dict[str, Any]:
        return alice.wait_for_state(
            "growing", "converged", app_name="learn", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
        )

    client.upload_train_data("growing", "learn", inputs=inputs[:12], labels=targets[:12])
    first = converged()
    few_rows_error = held_out_rmse()

    client.upload_train_data("growing", "learn", inputs=inputs[12:400], labels=targets[12:400])
    second = converged()
    more_rows_error = held_out_rmse()
    print(
        f"\nincremental: held-out RMSE {few_rows_error:.4f} on 12 rows -> "
        f"{more_rows_error:.4f} on 400 rows"
    )
    assert (first["trained_sample_count"], second["trained_sample_count"]) == (12, 400)
    assert second["steps"] > first["steps"]
    assert more_rows_error < 0.5 * few_rows_error
