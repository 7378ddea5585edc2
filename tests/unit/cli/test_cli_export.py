"""`sgt export NAME --app APP --out FILE` through CliRunner against the loopback fake server."""

from __future__ import annotations

import base64
from pathlib import Path

from test_cli_client_commands import (
    FakeServer,
    server,  # noqa: F401 - the fixture
    sgt,
    test_every_client_command_takes_the_server_and_credentials_from_options_or_env,
)

ANSWER = {
    "format": "onnx",
    "opset": 17,
    "input": "input",
    "output": "output",
    "in_size": 3,
    "out_size": 2,
    "base64": base64.b64encode(b"onnx file").decode(),
}


def test_export_takes_the_shared_server_and_credential_options() -> None:
    test_every_client_command_takes_the_server_and_credentials_from_options_or_env(["export"])


def test_export_writes_the_file_and_says_how_to_call_it(
    server: FakeServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    server.answers["/public/export_sgt_model"] = (200, ANSWER)
    out = tmp_path / "arm.onnx"
    environment = {"SGT_URL": server.url, "SGT_SECRET_ID": "alice", "SGT_SECRET_KEY": "k"}
    result = sgt(["export", "arm", "--app", "rig", "--out", str(out)], environment)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == b"onnx file"
    assert (
        result.stdout == f"wrote {out}: input float32 [n, 3] -> output float32 [n, 2], opset 17\n"
    )
    assert server.received == [
        (
            "/public/export_sgt_model",
            {"secret_id": "alice", "secret_key": "k", "name": "arm", "app_name": "rig"},
        )
    ]


def test_an_untrained_model_ends_in_one_line(
    server: FakeServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    error = {"exception": "RunWeightsNetException", "message": "model 'arm' has no trained weights"}
    server.answers["/public/export_sgt_model"] = (400, error)
    out = tmp_path / "arm.onnx"
    environment = {"SGT_URL": server.url, "SGT_SECRET_ID": "alice", "SGT_SECRET_KEY": "k"}
    result = sgt(["export", "arm", "--app", "rig", "--out", str(out)], environment)
    assert result.exit_code == 1
    assert "RunWeightsNetException: model 'arm' has no trained weights" in result.stderr
    assert not out.exists()
