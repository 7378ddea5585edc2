"""`run(..., return_std=True)` and `suggest_samples` in the client, over JSON and binary, against
a fake transport: the bodies sent, chunks joined in order, and malformed answers refused."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from sgt.client import RunWeightsNetException, UnexpectedResponse


def array(rows):
    data = np.asarray(rows, dtype="<f4")
    return {
        "dtype": "float32",
        "shape": list(data.shape),
        "base64": base64.b64encode(data.tobytes()).decode(),
    }


def std_server(json_reply, sent):
    """Answers each run chunk with mean = first input column, std = 1, last row out of range."""

    def handle(request):
        body = request.body
        sent.append(body)
        if request.path == "/public/suggest_sgt_model_samples":
            return json_reply([2, 0])
        data = body["data"]
        if isinstance(data, dict):
            raw = base64.b64decode(data["base64"])
            data = np.frombuffer(raw, dtype="<f4").reshape(data["shape"]).tolist()
        mean = [[row[0]] for row in data]
        std = [[1.0] for _ in data]
        flags = [index == len(data) - 1 for index in range(len(data))]
        if body.get("response_format") == "binary":
            return json_reply({"mean": array(mean), "std": array(std), "out_of_range": flags})
        return json_reply({"mean": mean, "std": std, "out_of_range": flags})

    return handle


ROWS = [[float(i), 0.0] for i in range(5)]


@pytest.mark.parametrize("binary", [False, True])
def test_run_with_std_joins_the_chunks(make_client, json_reply, binary):
    sent = []
    client, _ = make_client(std_server(json_reply, sent), binary=binary, chunk_rows=2)
    answer = client.run("arm", "rig", ROWS, return_std=True)
    assert answer["mean"] == [[float(i)] for i in range(5)]
    assert answer["std"] == [[1.0]] * 5
    # Each chunk's last row was flagged by the fake server: chunks of 2, 2 and 1 rows.
    assert answer["out_of_range"] == [False, True, False, True, True]
    assert all(body["return_std"] is True for body in sent) and len(sent) == 3


@pytest.mark.parametrize("binary", [False, True])
def test_suggest_sends_candidates_and_k(make_client, json_reply, binary):
    sent = []
    client, transport = make_client(std_server(json_reply, sent), binary=binary)
    assert client.suggest_samples("arm", "rig", ROWS, 2) == [2, 0]
    body = sent[-1]
    assert body["k"] == 2 and (body["name"], body["app_name"]) == ("arm", "rig")
    assert isinstance(body["candidates"], dict) is binary


def test_bad_candidates_are_refused_before_sending(make_client, json_reply):
    sent = []
    client, transport = make_client(std_server(json_reply, sent), binary=False)
    with pytest.raises(RunWeightsNetException):
        client.suggest_samples("arm", "rig", [[0.0, 1.0], [float("nan"), 1.0]], 1)
    with pytest.raises(RunWeightsNetException):
        client.suggest_samples("arm", "rig", [[0.0, 1.0], [1.0]], 1)
    assert sent == []


def test_an_answer_without_the_std_fields_is_unexpected(make_client, json_reply):
    client, _ = make_client(lambda request: json_reply([[1.0]]), binary=False)
    with pytest.raises(UnexpectedResponse):
        client.run("arm", "rig", [[0.0, 0.0]], return_std=True)
