"""Run an .onnx file as a studio's tool would: in a fresh interpreter that can import onnxruntime
and numpy and nothing else of this environment (no sgt, no torch, no onnx).

The interpreter runs isolated (`-I`: no PYTHONPATH, no user site) and without site-packages
(`-S`: no .pth files, so no editable install of sgt); a temporary folder that links only numpy and
onnxruntime stands in for site-packages. The script checks that sgt is not importable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime

_SCRIPT = """
import importlib.util, sys
sys.path.append(sys.argv[1])
for forbidden in ("sgt", "torch", "onnx"):
    assert importlib.util.find_spec(forbidden) is None, forbidden + " is importable"
import numpy as np
import onnxruntime as ort
session = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
[model_input] = session.get_inputs()
inputs = np.load(sys.argv[3])
outputs = session.run(None, {model_input.name: inputs})[0]
np.save(sys.argv[4], outputs)
print(model_input.name, model_input.type, session.get_outputs()[0].name)
"""


def run_in_sandbox(model_path: Path, inputs: np.ndarray, work: Path) -> tuple[np.ndarray, str]:
    """The model's outputs for float32 `inputs`, computed in the sandbox, and what it printed
    (input name, input type, output name)."""
    packages = work / "only-onnxruntime"
    packages.mkdir(exist_ok=True)
    for module in (np, onnxruntime):
        source = Path(module.__file__).parent  # type: ignore[arg-type]
        (packages / source.name).symlink_to(source, target_is_directory=True)
    libraries = Path(np.__file__).parent.parent / "numpy.libs"  # numpy's bundled BLAS
    if libraries.exists():
        (packages / libraries.name).symlink_to(libraries, target_is_directory=True)
    np.save(work / "inputs.npy", np.asarray(inputs, dtype=np.float32))
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    finished = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            _SCRIPT,
            str(packages),
            str(model_path),
            str(work / "inputs.npy"),
            str(work / "outputs.npy"),
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    return np.load(work / "outputs.npy"), finished.stdout.strip()
