"""A server of its own, stopped and started again on the same data directory: users, models,
samples, weights and the generated system key survive; deleted data and plain keys are
nowhere in the files."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from e2e_server import Session, SgtServer, assert_error, is_running, register_user

from factories import make_pairs

pytestmark = pytest.mark.e2e

PROBE = [[0.3, -0.2, 0.8], [-0.9, 0.1, 0.4]]
SECRET_KEY_MARK = "plain-key-that-must-never-be-stored-7f3a"
# A float32 value whose bytes are unlikely to appear in a database file by chance.
DELETED_MARK = np.float32(4321.8765)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SgtServer]:
    root: Path = tmp_path_factory.mktemp("restart")
    # No system key configured: the server generates one, and keeps it across the restart.
    running = SgtServer(root / "data", system_key=None)
    running.start()
    yield running
    running.close()


def data_files(server: SgtServer) -> list[Path]:
    return [path for path in server.data_dir.rglob("*") if path.is_file()]


def test_everything_survives_a_restart(own_server: SgtServer) -> None:
    alice = register_user(own_server, "alice")
    reply = own_server.post(
        "/private/update_auth_token",
        {"key": own_server.system_key, "secret_id": "carol", "secret_key": SECRET_KEY_MARK},
    )
    assert reply.status == 200
    alice.create("trained", is_public=True, client_data={"keep": [1, "two"]})
    alice.create("untrained", app_name="other", in_size=2, out_size=1)
    alice.upload("trained", make_pairs(30, seed=11))
    alice.wait_for_state("trained", "converged", deadline_seconds=120)
    alice.upload("untrained", [[[1.0, 2.0], [3.0]]] * 3, app_name="other")
    alice.ok("/public/clear_sgt_model_train_data", name="untrained", app_name="other")
    alice.upload("untrained", [[[1.0, 2.0], [3.0]]] * 2, app_name="other")
    gone = register_user(own_server, "gone")
    gone.create("deleted")
    gone.upload("deleted", [[[float(DELETED_MARK)] * 3, [float(DELETED_MARK)] * 2]] * 50)
    gone.ok("/public/delete_sgt_model", name="deleted", app_name="app")

    models_before = alice.my_models()
    public_before = alice.ok("/public/read_public_sgt_model")
    predictions_before = alice.run("trained", PROBE)
    trained_before = alice.status("trained")
    assert own_server.stop() is not None

    files = data_files(own_server)
    assert files
    for path in files:
        content = path.read_bytes()
        assert SECRET_KEY_MARK.encode() not in content, f"plain secret key in {path}"
        assert DELETED_MARK.tobytes() * 2 not in content, f"deleted samples left in {path}"

    key_before = own_server.system_key
    own_server.start()
    assert own_server.system_key == key_before, "the generated system key is kept"
    assert alice.ok("/public/check_auth_token") is True
    carol = Session(own_server, "carol", SECRET_KEY_MARK)
    assert carol.ok("/public/check_auth_token") is True
    assert alice.my_models() == models_before
    assert alice.ok("/public/read_public_sgt_model") == public_before
    assert alice.run("trained", PROBE) == predictions_before
    trained_after = alice.status("trained")
    assert trained_after["state"] == "converged"
    assert trained_after["sample_count"] == trained_before["sample_count"] == 30
    assert trained_after["steps"] == trained_before["steps"]
    assert alice.status("untrained", app_name="other")["sample_count"] == 2
    assert_error(
        gone.post("/public/get_sgt_model_train_status", name="deleted", app_name="app"),
        "FindModelException",
    )


def test_without_a_configured_key_one_is_generated_owner_only(own_server: SgtServer) -> None:
    path = own_server.generated_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in own_server.log, "the server says where the key is"
    key = path.read_text().strip()
    assert len(key) >= 32
    register_user(own_server, "with-generated-key")
    wrong = {"key": "", "secret_id": "x", "secret_key": "y"}
    assert own_server.post("/private/update_auth_token", wrong).body["exception"] == "AuthException"


def test_sigterm_stops_the_server_and_its_trainer(own_server: SgtServer) -> None:
    trainers = own_server.child_pids()
    assert len(trainers) == 1, "sgt serve runs one embedded trainer by default"
    own_server.stop()
    assert not is_running(trainers[0])
    own_server.start()
    assert own_server.get("/readyz").status_code == 200
    assert own_server.outlived_serve == [], "sgt serve exited before its embedded trainer"


def test_a_deleted_models_samples_are_gone_from_every_file_at_once(own_server: SgtServer) -> None:
    erin = register_user(own_server, "erin")
    erin.create("erased")
    erin.upload("erased", [[[float(DELETED_MARK)] * 3, [float(DELETED_MARK)] * 2]] * 50)
    pattern = DELETED_MARK.tobytes() * 2
    assert any(pattern in path.read_bytes() for path in data_files(own_server))
    erin.ok("/public/delete_sgt_model", name="erased", app_name="app")
    # The server keeps running: the bytes must not wait for a shutdown to disappear.
    leftovers = [path.name for path in data_files(own_server) if pattern in path.read_bytes()]
    assert leftovers == [], "samples of a deleted model are still on disk"


def test_a_restarted_server_keeps_training_where_it_stopped(own_server: SgtServer) -> None:
    dave = register_user(own_server, "dave")
    dave.create("resumed")
    dave.upload("resumed", make_pairs(20, seed=5))
    own_server.stop()
    own_server.start()
    status = dave.wait_for_state("resumed", "converged", deadline_seconds=120)
    assert status["sample_count"] == 20
    assert status["steps"] > 0
