"""Reading any checkpoint `std` may have written: one family's predictor, a blend of them, or
either behind principal shapes (`std_compressed`).

The families come from the caller (`sgt.ml.registry` via `StdModelType`), so a new family is
readable as soon as it is registered. Imports `sgt.ml.base`, `sgt.ml.checkpoints`, `blend`
and `std_compressed`.
"""

from __future__ import annotations

from collections.abc import Mapping

from sgt.ml.base import Family, Predictor
from sgt.ml.checkpoints import CheckpointUnreadable, Envelope, unpack_checkpoint
from sgt.ml.types import blend, std_compressed


def load_std_checkpoint(data: bytes, *, device: str, families: Mapping[str, Family]) -> Predictor:
    """The predictor in `data`, on `device`: a blend or one of `families` (by kind).

    The calibration stored beside the weights is attached (None in checkpoints older than it).
    Raises CheckpointUnreadable for bytes that are not a checkpoint, or of an unknown kind."""
    envelope = unpack_checkpoint(data, device=device)
    if envelope.kind == std_compressed.KIND:
        return std_compressed.load_compressed_payload(
            envelope.shape,
            envelope.payload,
            load_inner=lambda inner: load_std_checkpoint(inner, device=device, families=families),
        )
    if envelope.kind == blend.KIND:
        loaded: Predictor = blend.load_blend_payload(
            envelope.shape,
            envelope.payload,
            device=device,
            load_member=lambda member: _load_family(
                unpack_checkpoint(member, device=device), device=device, families=families
            ),
        )
    else:
        loaded = _load_family(envelope, device=device, families=families)
    return envelope.calibrate(loaded)


def _load_family(envelope: Envelope, *, device: str, families: Mapping[str, Family]) -> Predictor:
    # A blend's members are never blends themselves.
    family = families.get(envelope.kind)
    if family is None:
        raise CheckpointUnreadable(f"checkpoint holds an unknown model kind '{envelope.kind}'")
    return family.load_payload(envelope.shape, envelope.payload, device=device)
