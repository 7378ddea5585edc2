"""The envelope around every checkpoint: format tag, model kind, shape and a tensor payload.

Serialised with `torch.save` and read back with `weights_only=True`, so a checkpoint can hold
tensors, numbers, strings, lists and dicts but never code. Imports torch only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from sgt.ml.base import ModelShape, Predictor
from sgt.ml.numerics.calibration import Calibration

_FORMAT = "sgt-checkpoint"
_VERSION = 1

P = TypeVar("P", bound=Predictor)


class CheckpointUnreadable(ValueError):
    """The bytes are not a checkpoint this version of SGT can read."""


@dataclass(frozen=True)
class Envelope:
    """A decoded checkpoint: which predictor family wrote it, for which shape, with what."""

    kind: str
    shape: ModelShape
    payload: dict[str, Any]
    # None for checkpoints written before calibration existed, or by an uncalibrated run.
    calibration: Calibration | None = None

    def calibrate(self, predictor: Predictor) -> Predictor:
        """`predictor` (just read from this envelope) with the stored calibration attached."""
        predictor.calibration = self.calibration
        return predictor


def pack_checkpoint(
    *,
    kind: str,
    shape: ModelShape,
    payload: dict[str, Any],
    calibration: Calibration | None = None,
) -> bytes:
    """Serialise a predictor's payload (tensors must already be on the CPU) and its calibration
    (an optional key: readers before it ignore it, readers after it accept its absence)."""
    buffer = io.BytesIO()
    content = {
        "format": _FORMAT,
        "version": _VERSION,
        "kind": kind,
        "in_size": shape.in_size,
        "out_size": shape.out_size,
        "payload": payload,
    }
    if calibration is not None:
        content["calibration"] = calibration.to_state()
    torch.save(content, buffer)
    return buffer.getvalue()


def unpack_checkpoint(data: bytes, *, device: str, kind: str | None = None) -> Envelope:
    """Read bytes from `pack_checkpoint`, mapping tensors onto `device`.

    Raises CheckpointUnreadable when the bytes are not such a checkpoint, or not one of `kind`.
    """
    try:
        content = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as error:  # torch raises several unrelated types for corrupt input
        raise CheckpointUnreadable(f"not an SGT checkpoint: {error}") from error
    if not isinstance(content, dict) or content.get("format") != _FORMAT:
        raise CheckpointUnreadable("not an SGT checkpoint")
    if content.get("version") != _VERSION:
        raise CheckpointUnreadable(f"unsupported checkpoint version {content.get('version')}")
    shape = ModelShape(int(content["in_size"]), int(content["out_size"]))
    envelope = Envelope(
        kind=str(content["kind"]),
        shape=shape,
        payload=content["payload"],
        calibration=Calibration.from_state(content.get("calibration")),
    )
    if kind is not None and envelope.kind != kind:
        raise CheckpointUnreadable(f"checkpoint holds a '{envelope.kind}' model, not '{kind}'")
    return envelope


def read_checkpoint(data: bytes, *, device: str, kind: str, load_payload: Callable[..., P]) -> P:
    """The predictor of `kind` in `data`, on `device`, rebuilt by the family's `load_payload`
    and given the calibration stored beside it. Raises CheckpointUnreadable like
    `unpack_checkpoint`."""
    envelope = unpack_checkpoint(data, device=device, kind=kind)
    predictor = load_payload(envelope.shape, envelope.payload, device=device)
    envelope.calibrate(predictor)
    return predictor
