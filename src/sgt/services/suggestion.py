"""Suggest which candidate rows to label next: the model's own batch-selection rule over
validated candidates (sgt.ml.base.Predictor.suggest_rows; docs/uncertainty.md)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgt.errors import InvalidSamples
from sgt.services.blocking import refuse_blocking
from sgt.services.context import ServiceContext
from sgt.services.inference import find_predictor
from sgt.services.users import CurrentUser


def suggest_samples(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    candidates: Sequence[Sequence[float]] | np.ndarray,
    k: int,
) -> list[int]:
    """k distinct indices into `candidates` (m × in_size): the rows whose labels would most
    improve the model, chosen as a batch.

    Raises ModelNotFound; InvalidSamples for candidates of the wrong shape or with non-finite
    cells, and for k outside 1..m (more rows than there are candidates is refused, not cut)."""
    _, rows, predictor = find_predictor(
        ctx, user, app_name=app_name, name=name, data=candidates, field="candidates"
    )
    if not 1 <= k <= len(rows):
        raise InvalidSamples(
            f"k is {k}; it must be between 1 and the number of candidates ({len(rows)})"
        )
    refuse_blocking("sample selection")  # conditions a GP on the candidates: not for the loop
    return predictor().suggest_rows(rows, k)
