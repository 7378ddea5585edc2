"""Process-wide torch settings, applied once at start by the API and the trainer."""

from __future__ import annotations


def configure_torch(*, threads: int) -> None:
    """Use `threads` intra-op threads (0 keeps torch's default)."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
