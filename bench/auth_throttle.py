"""Guessing keys against a real `sgt serve`: six clients send wrong keys for one secret_id while
the rightful user, from another loopback address, keeps working. Prints the guesses answered per
second and those actually checked, with the throttle effectively off and at its defaults, and the
rightful user's latency alone and under attack.

    PYTHONPATH=src python bench/auth_throttle.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time

import orjson
from serve_support import SECRET_ID, SECRET_KEY, SYSTEM_KEY, Server

ATTACKERS = 6
ATTACKER_ADDRESS = "127.0.0.1"
RIGHTFUL_ADDRESS = "127.0.0.2"  # Linux answers on all of 127/8: a second client address
UNTHROTTLED = {
    "SGT_AUTH_FAILURE_BURST_PER_KEY": str(10**9),
    "SGT_AUTH_FAILURE_BURST_PER_ADDRESS": str(10**9),
}


def connect(port: int, source: str) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=(source, 0)
    )
    connection.connect()
    return connection


def post(connection: http.client.HTTPConnection, path: str, body: dict[str, object]) -> dict:
    connection.request(
        "POST", "/sgt" + path, orjson.dumps(body), {"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    return {"status": response.status, "body": orjson.loads(response.read())}


def rightful_latencies_ms(port: int, *, seconds: float) -> list[float]:
    connection = connect(port, RIGHTFUL_ADDRESS)
    body = {"secret_id": SECRET_ID, "secret_key": SECRET_KEY}
    latencies = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        answer = post(connection, "/public/read_my_sgt_model", body)
        latencies.append((time.perf_counter() - started) * 1000)
        assert answer["status"] == 200, answer
    connection.close()
    return latencies


def attack(port: int, *, seconds: float, results: list[tuple[int, int]], index: int) -> None:
    connection = connect(port, ATTACKER_ADDRESS)
    answered = checked = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = {"secret_id": SECRET_ID, "secret_key": f"guess-{index}-{answered}"}
        answer = post(connection, "/public/read_my_sgt_model", body)
        assert answer["body"]["exception"] == "AuthException", answer
        answered += 1
        checked += "retry in" not in answer["body"]["message"]
    connection.close()
    results.append((answered, checked))


def measure(env: dict[str, str], *, seconds: float) -> dict[str, float]:
    server = Server.start({"SGT_EMBEDDED_TRAINER": "false", **env})
    try:
        admin = connect(server.port, RIGHTFUL_ADDRESS)
        body = {"key": SYSTEM_KEY, "secret_id": SECRET_ID, "secret_key": SECRET_KEY}
        assert post(admin, "/private/update_auth_token", body)["status"] == 200
        admin.close()
        rightful_latencies_ms(server.port, seconds=0.5)  # the key is verified once, then recalled
        quiet = rightful_latencies_ms(server.port, seconds=seconds / 2)
        results: list[tuple[int, int]] = []
        attackers = [
            threading.Thread(
                target=attack,
                args=(server.port,),
                kwargs={"seconds": seconds, "results": results, "index": n},
            )
            for n in range(ATTACKERS)
        ]
        for thread in attackers:
            thread.start()
        loud = rightful_latencies_ms(server.port, seconds=seconds)
        for thread in attackers:
            thread.join()
    finally:
        server.stop()
    return {
        "answered_per_s": sum(a for a, _ in results) / seconds,
        "checked_per_s": sum(c for _, c in results) / seconds,
        "quiet_median_ms": statistics.median(quiet),
        "attack_median_ms": statistics.median(loud),
        "attack_p95_ms": statistics.quantiles(loud, n=20)[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    seconds = parser.parse_args().seconds
    rows = {
        "throttle off": measure(UNTHROTTLED, seconds=seconds),
        "defaults": measure({}, seconds=seconds),
    }
    print(f"{ATTACKERS} clients guessing one secret_id for {seconds:g} s", end="")
    print(f"; the rightful user from {RIGHTFUL_ADDRESS}")
    print(
        f"{'':14}{'answers/s':>11}{'checked/s':>11}{'user quiet':>12}{'user attack':>13}{'p95':>9}"
    )
    for name, row in rows.items():
        print(
            f"{name:14}{row['answered_per_s']:11.1f}{row['checked_per_s']:11.1f}"
            f"{row['quiet_median_ms']:10.1f}ms{row['attack_median_ms']:11.1f}ms{row['attack_p95_ms']:7.1f}ms"
        )
    off, on = rows["throttle off"]["checked_per_s"], rows["defaults"]["checked_per_s"]
    print(f"guesses checked: {off / max(on, 1e-9):.0f}x fewer with the throttle")


if __name__ == "__main__":
    main()
