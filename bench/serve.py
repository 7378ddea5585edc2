"""Serving speed and memory of `sgt serve`, against the in-process ceiling measured in the same run.

    .venv/bin/python bench/serve.py            # full run: W1 over 10 s, medians of 5
    .venv/bin/python bench/serve.py --quick    # a minute, for iteration

Starts the real server (`sgt serve`, default settings, a temporary data directory), creates a user
and `std` models, and measures:

- W1: run 1 x 64 -> 1 with 1 and 8 concurrent keep-alive clients (p50, p99, req/s);
- W2: run 20,000 x 128 -> 32 (about 50 MB of JSON); W3: run 1,024 x 2,048 -> 128;
- U1: upload 20,000 samples 128 -> 32 (durable when it answers: the status counts them);
- the same over the binary extension (base64 float32 arrays inside the JSON body, docs/binary.md);
- W1 p99 and W2 while the embedded trainer trains another model;
- the API processes' peak RSS during W2, against the request body size.

The ceiling is the same work done in this process with nothing in between: orjson parse, numpy,
the forward pass of a network of the same type and shape, orjson dump (for U1: parse and arrays).
Its forward pass is the fastest this machine offers, the one the server uses: one torch thread,
row blocks across one thread per CPU (torch's own two threads were up to 3x slower when the
machine was busy). "forward" in the notes is that pass alone: the model's share of any answer.
Server and ceiling runs alternate, so that the other work on a shared machine hits both alike.
Client time to send and receive is inside "ours"; it parses nothing it receives.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from serve_support import (
    CREDENTIALS,
    Client,
    Server,
    closed_loop,
    decode_array_object,
    median,
    random_rows,
    reset_peak_rss,
    rss_bytes,
    run_body,
    timed,
    upload_body,
)

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.parallel import RowParallelism
from sgt.ml.registry import get_model_type

FORWARD = RowParallelism(len(os.sched_getaffinity(0)))

RUN, UPLOAD = "/public/run_sgt_model", "/public/upload_sgt_model_train_data"
SHAPES = {"w1": (64, 1), "w2": (128, 32), "w3": (2048, 128)}
ROWS = {"w1": 1, "w2": 20_000, "w3": 1_024}
UPLOAD_ROWS = 20_000


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    server = Server.start(
        dict(item.split("=", 1) for item in args.server_env), trainer_nice=args.trainer_nice
    )
    results: dict[str, Any] = {"settings": vars(args), "commit": _commit(), "load": _loadavg()}
    rows: list[dict[str, Any]] = []
    try:
        client = Client(server.port)
        client.add_bench_user()
        for name, (width, out) in SHAPES.items():
            client.create_std_model(name, width, out)
        rows += bench_w1(server, rng, args)
        rows += bench_large(server, client, rng, args)
        rows += bench_upload(client, rng, args)
        if not args.skip_training:
            rows += bench_while_training(server, client, rng, args)
        client.close()
    finally:
        server.stop()
    results["load_after"] = _loadavg()
    results["rows"] = rows
    print_table(rows, results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {args.out}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per W1 case")
    parser.add_argument("--repeats", type=int, default=5, help="runs per W2, W3 and U1 case")
    parser.add_argument("--quick", action="store_true", help="W1 for 3 s, medians of 3")
    parser.add_argument("--skip-training", action="store_true", help="no while-training case")
    parser.add_argument("--no-binary", action="store_true", help="JSON only (servers without it)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--trainer-nice",
        type=int,
        default=None,
        metavar="N",
        help="experiment: no embedded trainer; `sgt worker` beside it at niceness N, 1 thread",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for sgt serve (experiments; the targets use the defaults)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve.json"))
    args = parser.parse_args()
    if args.quick:
        args.duration, args.repeats = 3.0, 3
    return args


# Workloads ----------------------------------------------------------------------------------


def bench_w1(
    server: Server, rng: np.random.Generator, args: argparse.Namespace
) -> list[dict[str, Any]]:
    body = run_body("w1", random_rows(rng, 1, 64), binary=False)
    ceiling = _ceiling_seconds(body, _predictor("w1"), repeats=2000)
    rows = []
    for clients in (1, 8):
        got = closed_loop(server.port, body, RUN, clients=clients, seconds=args.duration)
        rows.append(
            _row(
                f"W1 1x64->1, {clients} client{'s' if clients > 1 else ''}",
                got["p50_ms"] / 1e3,
                ceiling,
                p99_ms=got["p99_ms"],
                req_per_s=got["req_per_s"],
                requests=got["requests"],
                failures=got["failures"],
                target="p50 <= 3 ms" if clients == 1 else ">= 400 req/s",
                met=got["p50_ms"] <= 3 if clients == 1 else got["req_per_s"] >= 400,
            )
        )
    return rows


def bench_large(
    server: Server, client: Client, rng: np.random.Generator, args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = []
    for name in ("w2", "w3"):
        width, _ = SHAPES[name]
        inputs = random_rows(rng, ROWS[name], width)
        body = run_body(name, inputs, binary=False)
        binary_body = run_body(name, inputs, binary=True)
        predictor = _predictor(name)
        pids = server.api_pids()
        idle_rss = rss_bytes(pids)
        can_peak = reset_peak_rss(pids)
        answers: list[bytes] = []
        ours, ceiling = _alternate(
            lambda b=body, got=answers: got.append(client.post_ok(RUN, b)),
            lambda b=body, p=predictor: _ceiling(b, p),
            args.repeats,
        )
        peak_rss = rss_bytes(pids, "VmHWM") if can_peak else 0
        label = f"{name.upper()} {ROWS[name]:,}x{width:,}->{SHAPES[name][1]}"
        forward = median(
            [
                timed(lambda p=predictor, x=inputs: FORWARD.predict(p, x))
                for _ in range(args.repeats)
            ]
        )
        extra: dict[str, Any] = {"body_mb": len(body) / 1e6, "forward_seconds": forward}
        if name == "w2" and can_peak:
            extra |= {
                "idle_rss_mb": idle_rss / 1e6,
                "peak_rss_mb": peak_rss / 1e6,
                "peak_over_body": (peak_rss - idle_rss) / len(body),
                "peak_abs_over_body": peak_rss / len(body),
            }
        rows.append(_row(label, ours, ceiling, target="<= 1.2x ceiling", **extra))
        rows[-1]["met"] = rows[-1]["ratio"] <= 1.2
        if args.no_binary:
            continue
        binary_answers: list[bytes] = []
        binary = median(
            [
                timed(lambda b=binary_body, got=binary_answers: got.append(client.post_ok(RUN, b)))
                for _ in range(args.repeats)
            ]
        )
        same = np.array_equal(
            np.asarray(orjson.loads(answers[0]), dtype=np.float32),
            decode_array_object(orjson.loads(binary_answers[0])),
        )
        rows.append(
            _row(
                f"{label} binary",
                binary,
                ceiling,
                body_mb=len(binary_body) / 1e6,
                forward_seconds=forward,
                same_answer_as_json=bool(same),
                target="<= ceiling / 5" if name == "w2" else "",
                met=binary <= ceiling / 5 if name == "w2" else None,
            )
        )
    return rows


def bench_upload(
    client: Client, rng: np.random.Generator, args: argparse.Namespace
) -> list[dict[str, Any]]:
    inputs = random_rows(rng, UPLOAD_ROWS, 128)
    labels = random_rows(rng, UPLOAD_ROWS, 32)
    rows = []
    ceiling = 0.0
    for binary in (False,) if args.no_binary else (False, True):
        body = upload_body("u1", inputs, labels, binary=binary)
        times, ceilings = [], []
        for index in range(args.repeats):
            name = f"u1-{int(binary)}-{index}"
            client.create_std_model(name, 128, 32)
            named = body.replace(b'"name":"u1"', f'"name":"{name}"'.encode(), 1)
            times.append(timed(lambda b=named: client.post_ok(UPLOAD, b)))
            status = client.train_status(name)
            if status["sample_count"] != UPLOAD_ROWS:
                raise RuntimeError(f"upload answered before its samples were visible: {status}")
            # Deleting stops the training each upload starts, so the next case runs alone.
            client.call("/public/delete_sgt_model", {**CREDENTIALS, "name": name})
            if not binary:
                ceilings.append(timed(lambda b=body: _upload_ceiling(b)))
        if not binary:
            ceiling = median(ceilings)
        rows.append(
            _row(
                f"U1 upload {UPLOAD_ROWS:,}x(128->32){' binary' if binary else ''}",
                median(times),
                ceiling,
                body_mb=len(body) / 1e6,
                target="<= ceiling / 5" if binary else "<= 1.5 s",
                met=median(times) <= (ceiling / 5 if binary else 1.5),
            )
        )
    return rows


def bench_while_training(
    server: Server, client: Client, rng: np.random.Generator, args: argparse.Namespace
) -> list[dict[str, Any]]:
    # A learnable function, so the trainer keeps improving (and busy) for the whole case.
    inputs = random_rows(rng, 20_000, 128)
    mixing = rng.standard_normal((128, 32)).astype(np.float32) / np.sqrt(128)
    labels = np.tanh(inputs @ mixing).astype(np.float32)
    client.create_std_model("busy", 128, 32)
    client.post_ok(UPLOAD, upload_body("busy", inputs, labels, binary=not args.no_binary))
    deadline = time.monotonic() + 30
    while client.train_status("busy")["state"] != "training" and time.monotonic() < deadline:
        time.sleep(0.1)
    trainer_cpu = _trainer_cpu(server)
    w1 = closed_loop(
        server.port,
        run_body("w1", random_rows(rng, 1, 64), binary=False),
        RUN,
        clients=1,
        seconds=args.duration,
    )
    body = run_body("w2", random_rows(rng, ROWS["w2"], 128), binary=False)
    ours, ceiling = _alternate(
        lambda: client.post_ok(RUN, body), lambda: _ceiling(body, _predictor("w2")), args.repeats
    )
    busy = client.train_status("busy")["state"] == "training"
    trainer_share = (_trainer_cpu(server) - trainer_cpu) if trainer_cpu is not None else None
    return [
        _row(
            "W1 1 client, while training",
            w1["p50_ms"] / 1e3,
            None,
            p99_ms=w1["p99_ms"],
            req_per_s=w1["req_per_s"],
            trainer_busy_throughout=busy,
            target="p99 <= 20 ms",
            met=w1["p99_ms"] <= 20,
        ),
        _row(
            "W2 while training",
            ours,
            ceiling,
            trainer_busy_throughout=busy,
            trainer_cpu_s=trainer_share,
            target="<= 1.5x ceiling",
            met=ours <= 1.5 * ceiling,
        ),
    ]


# Ceiling ------------------------------------------------------------------------------------


def _predictor(name: str) -> Predictor:
    width, out = SHAPES[name]
    return get_model_type("std").initial(ModelShape(width, out), seed=0)


def _ceiling(body: bytes, predictor: Predictor) -> bytes:
    inputs = np.array(orjson.loads(body)["data"], dtype=np.float32)
    return orjson.dumps(FORWARD.predict(predictor, inputs), option=orjson.OPT_SERIALIZE_NUMPY)


def _ceiling_seconds(body: bytes, predictor: Predictor, *, repeats: int) -> float:
    return median([timed(lambda: _ceiling(body, predictor)) for _ in range(repeats)])


def _upload_ceiling(body: bytes) -> None:
    pairs = orjson.loads(body)["train_data"]
    for part in (0, 1):
        matrix = np.array([pair[part] for pair in pairs], dtype=np.float32)
        if not np.isfinite(matrix).all():
            raise ValueError("not finite")
        matrix.tobytes()


def _alternate(
    ours: Callable[[], object], ceiling: Callable[[], object], repeats: int
) -> tuple[float, float]:
    ours()  # warm: model cache, first allocation
    pairs = [(timed(ours), timed(ceiling)) for _ in range(repeats)]
    return median([p[0] for p in pairs]), median([p[1] for p in pairs])


# Helpers ------------------------------------------------------------------------------------


def _trainer_cpu(server: Server) -> float | None:
    from serve_support import cpu_seconds

    pids = server.trainer_pids()
    return sum(cpu_seconds(pid) for pid in pids) if pids else None


def _row(name: str, seconds: float, ceiling: float | None, **extra: Any) -> dict[str, Any]:
    ratio = seconds / ceiling if ceiling else None
    return {
        "workload": name,
        "seconds": seconds,
        "ceiling_seconds": ceiling,
        "ratio": ratio,
        **extra,
    }


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "bench"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _loadavg() -> list[float]:
    return list(os.getloadavg())


def print_table(rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    def ms(value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value * 1e3:,.3f} ms" if value < 0.01 else f"{value * 1e3:,.1f} ms"

    print(
        f"\ncommit {results['commit']}, {os.cpu_count()} CPUs, load {results['load']} -> "
        f"{results['load_after']}"
    )
    header = f"{'workload':40} {'ours':>11} {'ceiling':>11} {'ratio':>6}  {'target':16} met  notes"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        met = {True: "yes", False: "NO", None: ""}[row.get("met")]
        notes = []
        if "p99_ms" in row:
            notes.append(f"p99 {row['p99_ms']:.1f} ms, {row['req_per_s']:,.0f} req/s")
        if "peak_over_body" in row:
            notes.append(
                f"peak RSS {row['peak_rss_mb']:.0f} MB (idle {row['idle_rss_mb']:.0f}), "
                f"+{row['peak_over_body']:.1f}x body"
            )
        if "forward_seconds" in row:
            notes.append(f"forward {row['forward_seconds'] * 1e3:,.0f} ms")
        if "body_mb" in row:
            notes.append(f"body {row['body_mb']:.1f} MB")
        if "same_answer_as_json" in row:
            notes.append("same answer as JSON" if row["same_answer_as_json"] else "ANSWER DIFFERS")
        if "trainer_busy_throughout" in row:
            notes.append("trainer busy" if row["trainer_busy_throughout"] else "trainer NOT busy")
        print(
            f"{row['workload']:40} {ms(row['seconds']):>11} {ms(row['ceiling_seconds']):>11} "
            f"{ratio:>6}  {row.get('target', ''):16} {met:4} {'; '.join(notes)}"
        )
    if sys.stdout.isatty():
        sys.stdout.flush()


if __name__ == "__main__":
    main()
