"""Export end to end: train a small `std` model through a real `sgt serve`, export it with the
client and with `sgt export`, run the file in an interpreter that has onnxruntime and numpy only,
and compare with what run_sgt_model answers on 10,000 rows inside and outside the training
range (the agreement of tests/unit/ml/test_onnx_export.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from e2e_server import Session, SgtServer

from factories import make_samples
from onnx_sandbox import run_in_sandbox
from sgt.client import Client, RunWeightsNetException

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONVERGENCE_DEADLINE_SECONDS = 120.0


def test_an_exported_model_answers_as_the_server_does(
    server: SgtServer, alice: Session, tmp_path: Path
) -> None:
    client = Client(server.base_url, alice.secret_id, alice.secret_key)
    client.create_model("arm", "rig", in_size=3, out_size=2)
    with pytest.raises(RunWeightsNetException, match="no trained weights"):
        client.export_onnx("arm", "rig", tmp_path / "untrained.onnx")
    inputs, targets = make_samples(40, seed=11)
    client.upload_train_data("arm", "rig", inputs=inputs, labels=targets)
    alice.wait_for_state(
        "arm", "converged", app_name="rig", deadline_seconds=CONVERGENCE_DEADLINE_SECONDS
    )

    described = client.export_onnx("arm", "rig", tmp_path / "client.onnx")
    assert described == {
        "format": "onnx",
        "opset": 17,
        "input": "input",
        "output": "output",
        "in_size": 3,
        "out_size": 2,
    }
    environment = {
        **os.environ,
        "SGT_URL": server.base_url,
        "SGT_SECRET_ID": alice.secret_id,
        "SGT_SECRET_KEY": alice.secret_key,
    }
    shell = subprocess.run(
        [sys.executable, "-m", "sgt", "export", "arm", "--app", "rig", "--out", "shell.onnx"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shell.returncode == 0, shell.stderr
    assert (tmp_path / "shell.onnx").read_bytes() == (tmp_path / "client.onnx").read_bytes()

    rng = np.random.default_rng(3)
    probe = np.concatenate(
        [rng.uniform(-1.0, 1.0, size=(5000, 3)), rng.uniform(-3.0, 3.0, size=(5000, 3))]
    ).astype(np.float32)
    outputs, _ = run_in_sandbox(tmp_path / "shell.onnx", probe, tmp_path)
    served = np.array(client.run("arm", "rig", probe), dtype=np.float32)
    size = np.maximum(1.0, np.abs(targets).max(axis=0))
    excess = np.abs(outputs - served) - (1e-4 * np.abs(served) + 1e-5 * size)
    assert excess.max() <= 0.0, f"{(excess > 0).sum()} entries differ by more than allowed"
