"""Time for 20 models to converge with 1 trainer worker vs 2, on one PostgreSQL database.

    .venv/bin/python bench/cluster.py [--workers 1,2] [--models 20] [--rows 48] [--out PATH]

For each worker count: a fresh database, one API server (no trainer), N `sgt worker` processes
(started and idle before the clock starts), 20 `mlp` models of 2 inputs; the clock runs from the
first upload until every model reports `converged`. Then the lease history is audited: no model
may have been held by two workers at overlapping times. Prints a table and writes JSON.
Needs the local PostgreSQL (SGT_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "cluster")]

from cluster_support import Cluster, training_pairs, wait_until  # noqa: E402

from pg_support import PostgresDatabases  # noqa: E402
from sgt.storage import leases  # noqa: E402
from sgt.storage.engine import Database  # noqa: E402


def workers_are_idle(cluster: Cluster) -> bool:
    logs = [(cluster.root / f"worker-{n + 1}.log") for n in range(len(cluster.workers))]
    return all(path.exists() and "started (device" in path.read_text() for path in logs)


def measure(databases: PostgresDatabases, *, workers: int, models: int, rows: int) -> dict:
    with databases.fresh() as url, tempfile.TemporaryDirectory() as root:
        cluster = Cluster(Path(root), url)
        try:
            server = cluster.start_server()
            for _ in range(workers):
                cluster.start_worker()
            cluster.wait_until_ready()
            wait_until(lambda: workers_are_idle(cluster), seconds=120, what="idle workers")
            cluster.create_user()
            names = [f"m{index:02d}" for index in range(models)]
            for name in names:
                cluster.call(
                    server,
                    "/public/create_sgt_model",
                    app_name="c",
                    name=name,
                    model_type="mlp",
                    in_size=2,
                    out_size=1,
                )
            bodies = [training_pairs(index, rows) for index in range(models)]
            started = time.monotonic()
            for name, pairs in zip(names, bodies, strict=True):
                cluster.call(
                    server,
                    "/public/upload_sgt_model_train_data",
                    app_name="c",
                    name=name,
                    train_data=pairs,
                )
            cluster.wait_until_converged(names, seconds=600)
            seconds = time.monotonic() - started
            db = Database(url)
            try:
                with db.read() as session:
                    history = leases.lease_history(session)
            finally:
                db.dispose()
        finally:
            cluster.close()
    overlaps = leases.overlapping_leases(history)
    return {
        "workers": workers,
        "models": models,
        "rows_per_model": rows,
        "seconds_to_converge": round(seconds, 2),
        "claims": len(history),
        "models_per_worker": sorted(Counter(lease.worker for lease in history).values()),
        "overlapping_leases": len(overlaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rows", type=int, default=48, help="training rows per model")
    parser.add_argument("--out", default="bench/results/cluster.json")
    args = parser.parse_args()

    databases = PostgresDatabases()
    try:
        results = [
            measure(databases, workers=int(count), models=args.models, rows=args.rows)
            for count in args.workers.split(",")
        ]
    finally:
        databases.close()

    print(
        f"\n{'workers':>7} {'models':>6} {'seconds':>8} {'claims':>6}  {'per worker':<12} overlaps"
    )
    for result in results:
        print(
            f"{result['workers']:>7} {result['models']:>6} {result['seconds_to_converge']:>8.1f} "
            f"{result['claims']:>6}  {str(result['models_per_worker']):<12} "
            f"{result['overlapping_leases']}"
        )
    clean = all(result["overlapping_leases"] == 0 for result in results)
    print(f"lease history check: {'no overlapping leases' if clean else 'OVERLAPS FOUND'}")
    report = {
        "benchmark": "cluster",
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": results,
        "lease_history_clean": clean,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"report written to {args.out}")
    if not clean:
        sys.exit(1)


if __name__ == "__main__":
    main()
