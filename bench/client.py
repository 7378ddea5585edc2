"""Time `sgt.client.Client.run` on 50,000 x 128 -> 32 through chunks of several sizes versus one
request, against `sgt serve` started as users start it. Prints a table; writes JSON.

    .venv/bin/python bench/client.py [--rows 50000] [--repeats 3] [--out bench/results/client.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from serve_support import CREDENTIALS, SECRET_ID, SECRET_KEY, SYSTEM_KEY, Server
from serve_support import Client as RawClient

from sgt.client import Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", default="1000,5000,10000", help="chunk_rows to compare")
    parser.add_argument("--out", type=Path, default=Path("bench/results/client.json"))
    args = parser.parse_args()

    server = Server.start()
    try:
        raw = RawClient(server.port)
        raw.call(
            "/private/update_auth_token",
            {"key": SYSTEM_KEY, "secret_id": SECRET_ID, "secret_key": SECRET_KEY},
        )
        raw.call(
            "/public/create_sgt_model",
            {
                **CREDENTIALS,
                "name": "mesh",
                "model_type": "std",
                "in_size": 128,
                "out_size": 32,
                "client_data": None,
                "is_public": False,
            },
        )
        data = np.random.default_rng(0).standard_normal((args.rows, 128)).astype(np.float32)
        base_url = f"http://127.0.0.1:{server.port}"
        results = []
        for chunk_rows in [args.rows, *(int(c) for c in args.chunks.split(","))]:
            client = Client(base_url, SECRET_ID, SECRET_KEY, chunk_rows=chunk_rows, timeout=600)
            client.run("mesh", "bench", data[:10])  # warm the model cache and the connection
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                answer = client.run("mesh", "bench", data)
                times.append(time.perf_counter() - started)
            assert len(answer) == args.rows and len(answer[0]) == 32
            results.append(
                {
                    "chunk_rows": chunk_rows,
                    "requests": -(-args.rows // chunk_rows),
                    "median_seconds": statistics.median(times),
                    "times": times,
                }
            )
    finally:
        server.stop()
    single = results[0]["median_seconds"]
    print(f"Client.run, {args.rows:,} x 128 -> 32, median of {args.repeats}")
    print(f"{'chunk_rows':>10} {'requests':>9} {'seconds':>9} {'vs one request':>15}")
    for row in results:
        ratio = row["median_seconds"] / single
        print(
            f"{row['chunk_rows']:>10,} {row['requests']:>9} {row['median_seconds']:>9.2f} "
            f"{ratio:>14.2f}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2))


if __name__ == "__main__":
    main()
