"""PostgreSQL restarts under a running `sgt serve` (with its embedded trainer) and a separate
`sgt worker`: both trainers survive it without a restart, the model that was training when the
database went away is resumed and converges, a model uploaded afterwards converges too, and
/readyz is ready again.

This restarts a real PostgreSQL cluster: by default the local 15/main at 5432 (what `.ci/run`
manages). `SGT_TEST_PG_CLUSTER` ("15 faults") and `SGT_TEST_PG_URL` point it at another cluster,
so that it can be developed without breaking other runs on the shared server. Whatever happens,
the cluster is started again (if it is down) and waited for with pg_isready before the test ends.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from e2e_server import FAST_TIMINGS, SgtServer, clean_environment, register_user
from sqlalchemy import make_url

from factories import make_pairs
from pg_support import database_url as database_url_of
from pg_support import server_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

# Read once at import: the root conftest removes every SGT_* variable before each test runs.
CLUSTER = (os.environ.get("SGT_TEST_PG_CLUSTER") or "15 main").split()
SYSTEM_KEY = "outage-key"
# Small enough that a stale trainer shows within the test, long enough for a slow first beat.
STALE_SECONDS = "10"
DEADLINE_SECONDS = 150.0


def pg_isready() -> bool:
    url = make_url(server_url())
    probe = ["pg_isready", "-q", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432)]
    return subprocess.run(probe, check=False).returncode == 0


def wait_for(condition: Callable[[], bool], what: str) -> float:
    """Poll `condition` until true; returns the seconds it took, fails after the deadline."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < DEADLINE_SECONDS, f"not {what} in {DEADLINE_SECONDS}s"
        time.sleep(0.2)  # polling interval of a condition with a deadline
    return time.monotonic() - started


def pg_ctlcluster(action: str) -> None:
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, action]
    subprocess.run(command, check=True, timeout=120, capture_output=True)


@pytest.fixture
def restorable_postgres() -> Iterator[Callable[[], None]]:
    """A function that restarts the cluster; the cluster is up again when the test ends."""
    try:
        yield lambda: pg_ctlcluster("restart")
    finally:
        if not pg_isready():
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", *CLUSTER, "start"],
                check=False,
                timeout=120,
            )
        wait_for(pg_isready, "PostgreSQL accepting connections")


def admin_execute(statement: str) -> None:
    """One statement on the maintenance database, on a connection of its own: a connection held
    across the restart would be gone afterwards (why `PostgresDatabases` is not used here)."""
    conninfo = make_url(server_url()).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as pg:
        pg.execute(statement)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database named as `pg_support` names them (a run that dies leaves it to the next
    run's clean-up); `sgt serve` migrates it."""
    name = f"sgt_test_{os.getpid()}_{secrets.token_hex(4)}_outage"
    admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url_of(name)
    finally:
        wait_for(pg_isready, "PostgreSQL accepting connections")
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_worker(root: Path, database_url: str) -> subprocess.Popen[bytes]:
    env = clean_environment(
        SGT_DATABASE_URL=database_url, SGT_SYSTEM_KEY=SYSTEM_KEY, **FAST_TIMINGS
    )
    with (root / "worker.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sgt", "worker"],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def is_ready(server: SgtServer) -> bool:
    return server.get("/readyz").status_code == 200


def trainers_alive(server: SgtServer) -> int:
    found = re.search(r"^sgt_trainers_alive (\d+)$", server.get("/metrics").text, re.M)
    return int(found.group(1)) if found else -1


def test_trainers_survive_a_postgres_restart(
    tmp_path: Path, database_url: str, restorable_postgres: Callable[[], None]
) -> None:
    server = SgtServer(
        tmp_path / "data",
        system_key=SYSTEM_KEY,
        SGT_DATABASE_URL=database_url,
        SGT_TRAINER_STALE_SECONDS=STALE_SECONDS,
    )
    server.start()
    worker = start_worker(tmp_path, database_url)
    try:
        embedded = server.child_pids()
        wait_for(lambda: trainers_alive(server) == 2, "two trainers beating")
        alice = register_user(server, "alice")
        alice.create("before", model_type="mlp")
        alice.upload("before", make_pairs(300, seed=1))
        alice.wait_for_state("before", "training", deadline_seconds=60)

        restorable_postgres()
        recovered = wait_for(lambda: is_ready(server), "/readyz ready again")

        alice.create("after", model_type="mlp")
        alice.upload("after", make_pairs(200, seed=2))
        for name, rows in (("before", 300), ("after", 200)):
            status = alice.wait_for_state(name, "converged", deadline_seconds=DEADLINE_SECONDS)
            assert status["trained_sample_count"] == rows
        wait_for(lambda: trainers_alive(server) == 2, "both trainers beating again")
        assert worker.poll() is None, "the separate worker survived the restart"
        assert server.child_pids() == embedded, "the embedded trainer survived, not restarted"
        listed = json.loads(
            subprocess.run(
                [sys.executable, "-m", "sgt", "admin", "trainers", "--json"],
                env=clean_environment(SGT_DATABASE_URL=database_url, SGT_SYSTEM_KEY=SYSTEM_KEY),
                cwd=tmp_path,
                check=True,
                capture_output=True,
            ).stdout
        )
        assert len(listed) == 2 and all(trainer["restarts"] == 0 for trainer in listed)
        print(f"/readyz ready {recovered:.1f} s after the restart returned")
    except BaseException:
        print(server.log[-6000:], (tmp_path / "worker.log").read_text()[-6000:], sep="\n")
        raise
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(30)
        server.close()
