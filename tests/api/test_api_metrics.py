"""`/metrics`: Prometheus text that a client can neither forge nor flood, and worth scraping."""

from __future__ import annotations

import random
import re
import string

from api_client import Post, TestClient

from sgt.api.metrics import escape_label_value

# A sample line of the text format: name, optional {label="value",...}, a number.
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE_LINE = re.compile(
    rf"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{{(?:{LABEL})(?:,{LABEL})*\}})? "
    r"(?P<value>[-+]?(?:[0-9.e+-]+|Inf|NaN))$"
)


def scrape(client: TestClient) -> list[str]:
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text.splitlines()


def samples(lines: list[str], name: str) -> dict[str, float]:
    """The samples of one metric name, by their label text."""
    found = {}
    for line in lines:
        match = SAMPLE_LINE.match(line)
        if match and match["name"] == name:
            found[match["labels"] or ""] = float(match["value"])
    return found


def test_every_line_is_a_comment_or_a_well_formed_sample(
    client: TestClient, post: Post, credentials: dict[str, str]
) -> None:
    post("/public/read_my_sgt_model", credentials)
    lines = scrape(client)
    malformed = [line for line in lines if not line.startswith("#") and not SAMPLE_LINE.match(line)]
    assert malformed == []


def test_a_crafted_path_adds_no_line(client: TestClient) -> None:
    # Decoded by the server into: /x"} 1<newline>sgt_forged_total 1<newline>#
    crafted = "/x%22%7D%201%0Asgt_forged_total%201%0A%23"
    assert client.post(crafted).status_code == 400
    lines = scrape(client)
    assert not any("forged" in line for line in lines)
    assert samples(lines, "sgt_http_requests_total") == {'{route="unmatched",status="400"}': 1}


def test_random_paths_add_at_most_one_series(client: TestClient) -> None:
    scrape(client)  # the scrape itself is counted once it has answered
    before = samples(scrape(client), "sgt_http_requests_total")
    chooser = random.Random(13)
    for _ in range(300):
        path = "".join(chooser.choices(string.ascii_letters + string.digits, k=12))
        client.post(f"/sgt/{path}")
    after = samples(scrape(client), "sgt_http_requests_total")
    new_series = set(after) - set(before)
    assert len(new_series) <= 1
    assert sum(after.values()) - sum(before.values()) >= 300


def test_label_values_are_escaped_as_the_text_format_requires() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'


def test_requests_are_counted_by_route_template_and_timed(
    client: TestClient, post: Post, credentials: dict[str, str]
) -> None:
    for _ in range(3):
        assert post("/public/read_my_sgt_model", credentials).status_code == 200
    assert post("/public/read_my_sgt_model", {"secret_id": "alice"}).status_code == 400
    lines = scrape(client)
    route = "/sgt/public/read_my_sgt_model"
    totals = samples(lines, "sgt_http_requests_total")
    assert totals[f'{{route="{route}",status="200"}}'] == 3
    assert totals[f'{{route="{route}",status="400"}}'] == 1
    buckets = [
        value
        for labels, value in samples(lines, "sgt_http_request_duration_seconds_bucket").items()
        if labels.startswith(f'{{route="{route}"')
    ]
    assert buckets == sorted(buckets)  # cumulative
    assert buckets[-1] == 4  # le="+Inf"
    assert samples(lines, "sgt_http_request_duration_seconds_count")[f'{{route="{route}"}}'] == 4
    assert samples(lines, "sgt_http_request_duration_seconds_sum")[f'{{route="{route}"}}'] > 0
    assert "# TYPE sgt_http_request_duration_seconds histogram" in lines
    assert "# TYPE sgt_http_requests_total counter" in lines


def test_models_by_state_queue_depth_and_samples_come_from_the_database(
    client: TestClient, post: Post, credentials: dict[str, str]
) -> None:
    for name in ("a", "b"):
        model = {**credentials, "app_name": "maya", "name": name, "in_size": 2, "out_size": 1}
        assert post("/public/create_sgt_model", {**model, "model_type": "std"}).is_success
    rows = [[[0.5, 1.0], [3.0]], [[1.0, 2.0], [1.5]], [[2.0, 2.0], [0.5]]]
    upload = {**credentials, "app_name": "maya", "name": "a", "train_data": rows}
    assert post("/public/upload_sgt_model_train_data", upload).is_success
    lines = scrape(client)
    models = samples(lines, "sgt_models")
    assert models['{state="queued"}'] == 1
    assert models['{state="untrained"}'] == 1
    assert models['{state="converged"}'] == 0
    assert samples(lines, "sgt_training_queue_depth") == {"": 1}
    assert samples(lines, "sgt_samples_stored") == {"": 3}
    assert samples(lines, "sgt_database_up") == {"": 1}


def test_failed_authentications_are_counted(
    client: TestClient, post: Post, credentials: dict[str, str]
) -> None:
    wrong = {**credentials, "secret_key": "wrong"}
    for _ in range(2):
        assert post("/public/read_my_sgt_model", wrong).json()["exception"] == "AuthException"
    lines = scrape(client)
    assert samples(lines, "sgt_auth_failures_total") == {"": 2}
    assert samples(lines, "sgt_auth_throttled_total") == {"": 0}
    assert "# TYPE sgt_auth_failures_total counter" in lines
