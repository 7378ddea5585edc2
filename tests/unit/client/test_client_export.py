"""`Client.export_onnx`: posts the model's name, writes the decoded file, returns how to call it."""

from __future__ import annotations

import base64

import pytest

from sgt.client import RunWeightsNetException, UnexpectedResponse

FILE = b"\x08\x08onnx bytes\x00\xff"
ANSWER = {
    "format": "onnx",
    "opset": 17,
    "input": "input",
    "output": "output",
    "in_size": 3,
    "out_size": 2,
}


def test_export_writes_the_decoded_file_and_returns_the_rest(make_client, json_reply, tmp_path):
    answer = {**ANSWER, "base64": base64.b64encode(FILE).decode()}
    client, transport = make_client(lambda request: json_reply(answer))
    path = tmp_path / "arm.onnx"
    assert client.export_onnx("arm", "rig", path) == ANSWER
    assert path.read_bytes() == FILE
    [request] = transport.requests
    assert request.path == "/public/export_sgt_model"
    assert request.body == {
        "secret_id": "alice",
        "secret_key": "s3cret",
        "name": "arm",
        "app_name": "rig",
    }


def test_an_untrained_model_raises_and_writes_nothing(make_client, error_reply, tmp_path):
    client, _ = make_client(lambda request: error_reply("RunWeightsNetException", "untrained"))
    path = tmp_path / "arm.onnx"
    with pytest.raises(RunWeightsNetException, match="untrained"):
        client.export_onnx("arm", "rig", str(path))
    assert not path.exists()


def test_an_answer_without_the_file_is_unexpected(make_client, json_reply, tmp_path):
    client, _ = make_client(lambda request: json_reply(ANSWER))
    with pytest.raises(UnexpectedResponse):
        client.export_onnx("arm", "rig", tmp_path / "arm.onnx")
    assert not (tmp_path / "arm.onnx").exists()
