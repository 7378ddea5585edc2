"""The binary extension from the client's side: detected once from the server's header, used for
run and upload, and giving the same float32 numbers as plain JSON.

The fake server here decodes and encodes arrays with numpy, independently of the client's
standard-library code, and prints JSON answers as the real server does: the shortest decimal
that reads back as the same float32.
"""

from __future__ import annotations

import array
import base64
import math

import numpy as np
import pytest

import sgt.client as sc

ADVERTISED = {"X-SGT-Extensions": "binary"}


def decode(value):
    """An array object as a float32 numpy matrix; asserts it is well formed."""
    assert set(value) == {"dtype", "shape", "base64"} and value["dtype"] == "float32"
    raw = base64.b64decode(value["base64"], validate=True)
    return np.frombuffer(raw, dtype="<f4").reshape(value["shape"])


def encode(matrix):
    matrix = np.ascontiguousarray(matrix, dtype="<f4")
    return {
        "dtype": "float32",
        "shape": list(matrix.shape),
        "base64": base64.b64encode(matrix.tobytes()).decode(),
    }


def model(inputs):
    # Outputs with full float32 mantissas, so a printed decimal is rarely the float32 itself.
    weights = np.linspace(-1.3, 0.7, inputs.shape[1] * 2, dtype=np.float32)
    return (np.sin(inputs) @ weights.reshape(-1, 2) / 3).astype(np.float32)


def shortest_json(matrix):
    # What the server's orjson prints for a float32 array: the shortest round-tripping decimal.
    return [[float(str(np.float32(v))) for v in row] for row in matrix]


def fake_server(json_reply, headers=ADVERTISED):
    """A server with the extension (or, without headers, the original one) and one model."""

    def handle(request):
        body = request.body
        if request.path == "/public/run_sgt_model":
            data = body["data"]
            inputs = decode(data) if isinstance(data, dict) else np.array(data, np.float32)
            outputs = model(inputs.reshape(len(inputs), -1))
            binary = body.get("response_format") == "binary"
            return json_reply(encode(outputs) if binary else shortest_json(outputs), 200, headers)
        if request.path == "/public/upload_sgt_model_train_data":
            handle.uploads.append(body["train_data"])
        if request.path == "/public/list_model_type":
            return json_reply(["std"], 200, headers)
        return json_reply(None, 200, headers)

    handle.uploads = []
    return handle


def paths(transport):
    return [request.path for request in transport.requests]


DATA = np.random.default_rng(0).uniform(-2, 2, (10, 3)).astype(np.float32).tolist()


def test_support_is_learnt_once_from_a_cheap_request(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=None)

    client.run("arm", "rig", DATA)
    client.run("arm", "rig", DATA)

    assert paths(transport) == ["/public/list_model_type"] + ["/public/run_sgt_model"] * 2
    assert [r.body["response_format"] for r in transport.requests[1:]] == ["binary"] * 2
    assert transport.requests[0].raw == b"{}"


def test_any_earlier_reply_spares_the_extra_request(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=None)

    client.clear_train_data("arm", "rig")
    client.upload_train_data("arm", "rig", inputs=DATA, labels=DATA)

    assert paths(transport)[0] == "/public/clear_sgt_model_train_data"
    assert paths(transport)[1:] == ["/public/upload_sgt_model_train_data"]
    assert set(transport.requests[1].body["train_data"]) == {"inputs", "labels"}


def test_a_server_without_the_header_gets_plain_json(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply, headers={}), binary=None)

    client.run("arm", "rig", DATA)
    client.upload_train_data("arm", "rig", inputs=DATA, labels=DATA)

    assert paths(transport)[0] == "/public/list_model_type"
    run, upload = transport.requests[1:]
    assert run.body["data"] == DATA and "response_format" not in run.body
    assert upload.body["train_data"] == [[x, x] for x in DATA]


@pytest.mark.parametrize("value", ["binary, onnx", "onnx , Binary", "onnx", ""])
def test_the_header_is_a_list_of_names(make_client, json_reply, value):
    client, transport = make_client(
        fake_server(json_reply, {"x-sgt-extensions": value}), binary=None
    )

    client.run("arm", "rig", DATA)

    assert isinstance(transport.requests[-1].body["data"], dict) is ("inary" in value)


def test_a_failed_detection_falls_back_to_json_and_asks_again(make_client, json_reply):
    replies = [(503, {}, b"busy"), json_reply(["std"], 200, ADVERTISED)]
    server = fake_server(json_reply)

    def handler(request):
        if request.path == "/public/list_model_type":
            return replies.pop(0)
        return server(request)

    client, transport = make_client(handler, binary=None)
    client.run("arm", "rig", DATA)
    client.run("arm", "rig", DATA)

    runs = [r.body for r in transport.requests if r.path == "/public/run_sgt_model"]
    assert isinstance(runs[0]["data"], list) and isinstance(runs[1]["data"], dict)


def test_a_server_out_of_reach_fails_the_call_as_usual(make_client):
    def refuse(request):
        raise sc.ConnectFailed("refused")

    client, transport = make_client(refuse, binary=None, retries=1)

    with pytest.raises(sc.ConnectFailed):
        client.upload_train_data("arm", "rig", inputs=DATA, labels=DATA)
    assert paths(transport) == ["/public/list_model_type"] * 2  # the probe, retried once


@pytest.mark.parametrize(("binary", "is_binary"), [(True, True), (False, False)])
def test_the_binary_option_forces_either_path(make_client, json_reply, binary, is_binary):
    client, transport = make_client(fake_server(json_reply), binary=binary)

    client.run("arm", "rig", DATA)

    (request,) = transport.requests
    assert isinstance(request.body["data"], dict) is is_binary


def test_the_binary_option_is_checked():
    with pytest.raises(ValueError, match="binary"):
        sc.Client("http://h", "a", "b", binary="yes")


def test_the_request_body_is_the_documented_object(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=True)

    client.run("arm", "rig", [[1.0, -2.5], [0.1, 3.0]])

    (request,) = transport.requests
    data = request.body.pop("data")
    assert request.body == {
        "secret_id": "alice",
        "secret_key": "s3cret",
        "name": "arm",
        "app_name": "rig",
        "response_format": "binary",
    }
    assert data["shape"] == [2, 2]
    assert base64.b64decode(data["base64"]) == np.array([1, -2.5, 0.1, 3], "<f4").tobytes()


def test_json_and_binary_give_the_same_float32_values(make_client, json_reply):
    data = np.random.default_rng(1).uniform(-3, 3, (200, 5)).tolist()  # doubles, not float32
    plain, _ = make_client(fake_server(json_reply), binary=False)
    binary, _ = make_client(fake_server(json_reply), binary=True)

    from_json = plain.run("arm", "rig", data)
    from_binary = binary.run("arm", "rig", data)

    expected = model(np.array(data, dtype=np.float32))
    # Binary answers are the server's float32 values exactly; JSON answers are the shortest
    # decimals that round to them. Identical means: equal once rounded to float32.
    assert from_binary == expected.tolist()
    assert flat_float32(from_json) == flat_float32(from_binary)
    assert from_json != from_binary  # the rule is needed: as doubles, the two differ


def flat_float32(rows):
    return array.array("f", [value for row in rows for value in row]).tobytes()


def test_binary_run_is_chunked_in_order_with_progress(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=True, chunk_rows=3)
    progress = []

    result = client.run("arm", "rig", DATA, progress=lambda *a: progress.append(a))

    assert [r.body["data"]["shape"] for r in transport.requests] == [[3, 3]] * 3 + [[1, 3]]
    assert np.concatenate([decode(r.body["data"]) for r in transport.requests]).tolist() == DATA
    # The server's answers, chunk by chunk: numpy's float32 sin and product may differ in the
    # last bit between a batch of 10 rows and one of 1, so the whole batch is not the reference.
    chunks = [np.array(DATA[start : start + 3], np.float32) for start in range(0, 10, 3)]
    assert result == np.concatenate([model(chunk) for chunk in chunks]).tolist()
    assert progress == [(3, 10), (6, 10), (9, 10), (10, 10)]


def test_binary_run_with_no_rows_still_asks_the_server(make_client, json_reply):
    client, transport = make_client(lambda r: json_reply(encode(np.zeros((0, 4)))), binary=True)

    assert client.run("arm", "rig", []) == []
    assert transport.requests[0].body["data"] == {"dtype": "float32", "shape": [0, 0], "base64": ""}


@pytest.mark.parametrize(
    "data",
    [
        np.array(DATA, dtype=np.float32),
        np.array(DATA, dtype=np.float64),
        np.asfortranarray(np.array(DATA, dtype=np.float32)),  # no C-order buffer: read as rows
        np.array(DATA, dtype=">f4"),
        [np.array(row, dtype=np.float32) for row in DATA],
        [array.array("d", row) for row in DATA],
        [tuple(np.float32(v) for v in row) for row in DATA],
    ],
    ids=["float32", "float64", "fortran", "big-endian", "numpy-rows", "array-rows", "scalars"],
)
def test_arrays_give_the_same_bytes_as_lists(make_client, json_reply, data):
    client, transport = make_client(fake_server(json_reply), binary=True)

    client.run("arm", "rig", data)

    assert decode(transport.requests[0].body["data"]).tolist() == DATA


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39])
def test_non_finite_numbers_stop_an_upload_before_anything_is_sent(make_client, json_reply, bad):
    client, transport = make_client(fake_server(json_reply), binary=True, chunk_rows=2)
    labels = [[1.0], [2.0], [3.0], [bad], [5.0]]

    with pytest.raises(sc.UploadDataException, match=r"labels\[3\] contains NaN or infinity"):
        client.upload_train_data("arm", "rig", inputs=[[0.0]] * 5, labels=labels)

    assert transport.requests == []


def test_non_finite_numbers_in_a_numpy_run_raise_the_run_exception(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=True)
    data = np.zeros((4, 2), np.float32)
    data[2, 1] = np.nan

    with pytest.raises(sc.RunWeightsNetException, match=r"data\[2\] contains NaN"):
        client.run("arm", "rig", data)
    assert transport.requests == []


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([[1.0, 2.0], [1.0]], r"data\[1\] has 1 values, data\[0\] has 2"),
        ([[1.0, "x"]], r"data\[0\]: "),
        ([[1.0, 2.0], "ab"], r"data\[1\] must be a list of numbers"),
        ("rows", "data must be a list of rows"),
    ],
)
def test_malformed_rows_are_refused_before_sending(make_client, json_reply, data, match):
    client, transport = make_client(fake_server(json_reply), binary=True)

    with pytest.raises(sc.RunWeightsNetException, match=match):
        client.run("arm", "rig", data)
    assert transport.requests == []


def test_binary_upload_pairs_inputs_with_labels_in_chunks(make_client, json_reply):
    server = fake_server(json_reply)
    client, _ = make_client(server, binary=True, chunk_rows=4)
    labels = [[float(i)] for i in range(10)]
    progress = []

    client.upload_train_data("arm", "rig", DATA, labels, progress=lambda *a: progress.append(a))
    client.upload_train_data("arm", "rig", pairs=list(zip(DATA, labels, strict=True)))

    first, second = server.uploads[:3], server.uploads[3:]
    for chunks in (first, second):
        assert [decode(c["inputs"]).shape for c in chunks] == [(4, 3), (4, 3), (2, 3)]
        assert np.concatenate([decode(c["inputs"]) for c in chunks]).tolist() == DATA
        assert np.concatenate([decode(c["labels"]) for c in chunks]).tolist() == labels
    assert progress == [(4, 10), (8, 10), (10, 10)]


def test_binary_upload_checks_the_row_counts(make_client, json_reply):
    client, transport = make_client(fake_server(json_reply), binary=True)

    with pytest.raises(sc.UploadDataException, match="inputs has 10 rows but labels has 1"):
        client.upload_train_data("arm", "rig", inputs=DATA, labels=[[1.0]])
    assert transport.requests == []


def test_a_failed_binary_chunk_says_how_many_rows_were_committed(
    make_client, json_reply, error_reply
):
    def handler(request):
        if len(handler.seen) == 2:
            return error_reply("UploadDataException", "train_data.inputs: bad")
        handler.seen.append(request)
        return json_reply(None)

    handler.seen = []
    client, _ = make_client(handler, binary=True, chunk_rows=3)

    with pytest.raises(sc.UploadDataException) as caught:
        client.upload_train_data("arm", "rig", DATA, [[1.0]] * 10)

    assert caught.value.rows_done == 6


@pytest.mark.parametrize(
    "answer",
    [
        [[1.0]],
        {"dtype": "float64", "shape": [1, 1], "base64": "AAAAAAAAAAA="},
        {"dtype": "float32", "shape": [2, 1], "base64": "AAAAAAAAAAA="},
        {"dtype": "float32", "shape": [1], "base64": "AAAAAA=="},
        {"dtype": "float32", "shape": [1, 2], "base64": "AAAAAA=="},
        {"dtype": "float32", "shape": [1, 1], "base64": "not base64!"},
    ],
)
def test_a_malformed_binary_answer_is_unexpected(make_client, json_reply, answer):
    client, _ = make_client(lambda r: json_reply(answer), binary=True)

    with pytest.raises(sc.UnexpectedResponse):
        client.run("arm", "rig", [[1.0]])
