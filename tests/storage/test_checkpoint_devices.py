"""Checkpoints are device independent: weights trained on one device load on any other.

On a CPU-only machine this checks every model type's bytes round-trip through `load(device=...)`
with equal predictions and hold no CUDA tensors; the CUDA cases (trained on a GPU, served on a
CPU, and the other way round) run where torch sees a GPU and are skipped elsewhere.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.registry import get_model_type, model_type_names
from sgt.ml.runtime import configure_torch

SHAPE = ModelShape(3, 2)
HAS_CUDA = torch.cuda.is_available()


def trained_bytes(
    model_type: str, device: str, *, steps: int = 3, noise: float = 0.0
) -> tuple[bytes, np.ndarray, np.ndarray]:
    configure_torch(threads=1)
    rng = np.random.default_rng(7)
    inputs = rng.uniform(-1, 1, (24, 3)).astype(np.float32)
    targets = np.stack([inputs.sum(axis=1), np.sin(3 * inputs[:, 0])], axis=1)
    targets = (targets + rng.normal(scale=noise, size=targets.shape)).astype(np.float32)
    kind = get_model_type(model_type)
    run = kind.start_training(SHAPE, inputs, targets, start=None, seed=3, device=device)
    for _ in range(steps):
        if run.step().is_converged:
            break
    best: Predictor = run.best()
    return best.to_bytes(), inputs, best.predict(inputs)


def holds_cuda_storage(data: bytes) -> bool:
    """True when a torch.save archive records a tensor stored on a CUDA device."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [archive.read(name) for name in archive.namelist() if name.endswith(".pkl")]
    return any(b"cuda" in pickle for pickle in pickles)


@pytest.mark.parametrize("model_type", model_type_names())
def test_checkpoints_round_trip_on_the_cpu(model_type: str) -> None:
    data, inputs, expected = trained_bytes(model_type, "cpu")
    loaded = get_model_type(model_type).load(data, device="cpu")
    np.testing.assert_allclose(loaded.predict(inputs), expected, rtol=1e-5, atol=1e-6)
    if data[:2] == b"PK":
        assert not holds_cuda_storage(data)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device (run on a GPU machine)")
@pytest.mark.parametrize("model_type", model_type_names())
@pytest.mark.parametrize(("trained_on", "served_on"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_checkpoints_move_between_gpu_and_cpu(
    model_type: str, trained_on: str, served_on: str
) -> None:
    data, inputs, expected = trained_bytes(model_type, trained_on)
    if data[:2] == b"PK":  # a torch.save archive: a GPU's tensors must be moved off it first
        assert not holds_cuda_storage(data)
    loaded = get_model_type(model_type).load(data, device=served_on)
    np.testing.assert_allclose(loaded.predict(inputs), expected, rtol=1e-4, atol=1e-5)


# Trained to convergence on 24 noisy rows, `std` serves a blend of its candidates.
DEVICE_PAIRS = [("cpu", "cpu")] + ([("cuda", "cpu"), ("cpu", "cuda")] if HAS_CUDA else [])


@pytest.mark.parametrize(("trained_on", "served_on"), DEVICE_PAIRS)
def test_a_std_blend_moves_between_devices(trained_on: str, served_on: str) -> None:
    data, inputs, expected = trained_bytes("std", trained_on, steps=10_000, noise=0.3)
    assert not holds_cuda_storage(data)
    loaded = get_model_type("std").load(data, device=served_on)
    assert getattr(loaded, "kind", None) == "blend"
    np.testing.assert_allclose(loaded.predict(inputs), expected, rtol=1e-4, atol=1e-5)
