"""Several real API servers and trainer workers around one database.

On PostgreSQL: 2 API servers (one with 2 API processes) + 3 workers + 8 models (bench/cluster.py
times 20). Every model converges, no model is ever held by two trainers at once (lease
history), a worker killed with SIGKILL mid-training loses its model only until the lease
expires, and every checkpoint loads.
On SQLite: `sgt serve --workers 2` serves the newest weights from every API process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cluster_support import Cluster, target_function, training_pairs, wait_until
from sqlalchemy import select

from pg_support import PostgresDatabases
from sgt.ml.registry import get_model_type
from sgt.storage import checkpoints, leases
from sgt.storage.engine import Database
from sgt.storage.tables import ModelRow, TrainingRow

pytestmark = pytest.mark.slow

MODEL_COUNT = 8
PROBE = np.array([[0.5, -0.5], [-0.25, 0.75], [0.0, 0.0]], dtype=np.float32)
TOLERANCE = 0.15


@pytest.fixture
def pg_cluster(tmp_path: Path, pg_databases: PostgresDatabases) -> Iterator[Cluster]:
    with pg_databases.fresh() as url:
        cluster = Cluster(tmp_path, url)
        try:
            yield cluster
        finally:
            cluster.close()


def holder_of(db: Database, name: str) -> str | None:
    """The worker holding model `name` once it has a checkpoint, else None."""
    with db.read() as session:
        row = session.execute(
            select(TrainingRow.model_id, TrainingRow.state, TrainingRow.lease_owner)
            .join(ModelRow, ModelRow.id == TrainingRow.model_id)
            .where(ModelRow.name == name)
        ).one()
        has_weights = checkpoints.checkpoint_version(session, row.model_id) is not None
    return row.lease_owner if row.state == "training" and has_weights else None


def pid_of(worker_name: str) -> int:
    return int(worker_name.rsplit(":", 2)[1])  # host:pid:random


def assert_predicts(cluster: Cluster, url: str, name: str, index: int) -> list[list[float]]:
    outputs = cluster.call(
        url, "/public/run_sgt_model", app_name="c", name=name, data=PROBE.tolist()
    )
    error = np.abs(np.array(outputs) - target_function(index, PROBE)).max()
    assert error < TOLERANCE, (name, outputs)
    return outputs  # type: ignore[no-any-return]


@pytest.mark.postgres
def test_two_servers_three_workers_eight_models_one_killed(pg_cluster: Cluster) -> None:
    cluster = pg_cluster
    first = cluster.start_server(api_workers=2)
    second = cluster.start_server()
    for _ in range(3):
        cluster.start_worker()
    cluster.wait_until_ready()
    cluster.create_user()
    names = [f"m{index:02d}" for index in range(MODEL_COUNT)]
    urls = [first, second]
    for index, name in enumerate(names):
        cluster.call(
            urls[index % 2],
            "/public/create_sgt_model",
            app_name="c",
            name=name,
            model_type="mlp",
            in_size=2,
            out_size=1,
        )
    # The first model has many rows, so it is still training when its worker is killed.
    for index, name in enumerate(names):
        rows = 20_000 if index == 0 else 48
        cluster.call(
            urls[index % 2],
            "/public/upload_sgt_model_train_data",
            app_name="c",
            name=name,
            train_data=training_pairs(index, rows),
        )

    db = Database(cluster.database_url)
    try:
        victim = wait_until(lambda: holder_of(db, names[0]), seconds=90, what="a checkpoint of m00")
        os.kill(pid_of(victim), signal.SIGKILL)
        cluster.wait_until_converged(names, seconds=150)

        with db.read() as session:
            history = leases.lease_history(session)
            stored = [
                (name, checkpoints.load_checkpoint(session, model_id))
                for name, model_id in session.execute(select(ModelRow.name, ModelRow.id))
            ]
    finally:
        db.dispose()

    assert leases.overlapping_leases(history) == []
    assert len({lease.worker for lease in history}) >= 2
    killed = [lease for lease in history if lease.worker == victim]
    assert killed and not killed[-1].was_released  # it died holding m00
    heir = [lease for lease in history if lease.model_id == killed[-1].model_id][-1]
    assert heir.worker != victim and heir.was_released

    for name, row in stored:
        assert row is not None, name
        predictor = get_model_type(row.model_type).load(row.weights, device="cpu")
        assert predictor.predict(PROBE).shape == (len(PROBE), 1)
    for index, name in enumerate(names):
        assert assert_predicts(cluster, first, name, index) == assert_predicts(
            cluster, second, name, index
        )


def test_every_api_process_serves_the_newest_weights(tmp_path: Path) -> None:
    """On SQLite (the PostgreSQL cluster test above runs a 2-process server too): after each
    new training, requests over fresh connections, spread over both API processes, all get the
    new weights."""
    url = f"sqlite:///{tmp_path / 'data' / 'sgt.db'}"
    (tmp_path / "data").mkdir()
    cluster = Cluster(tmp_path, url)
    try:
        server = cluster.start_server(api_workers=2, trainer=True)
        cluster.wait_until_ready()
        cluster.create_user()
        cluster.call(
            server,
            "/public/create_sgt_model",
            app_name="c",
            name="m",
            model_type="mlp",
            in_size=2,
            out_size=1,
        )
        for index in (1, 2):
            cluster.call(server, "/public/clear_sgt_model_train_data", app_name="c", name="m")
            cluster.call(
                server,
                "/public/upload_sgt_model_train_data",
                app_name="c",
                name="m",
                train_data=training_pairs(index, 48),
            )
            cluster.wait_until_converged(["m"], seconds=90)
            # New connections spread over both API processes; each must see the new weights.
            answers = [assert_predicts(cluster, server, "m", index) for _ in range(8)]
            assert all(answer == answers[0] for answer in answers)
    finally:
        cluster.close()
