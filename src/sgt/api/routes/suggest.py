"""Active learning: /public/suggest_sgt_model_samples."""

from __future__ import annotations

from sgt.api.binary import matrix_of
from sgt.api.errors import RUN_EXCEPTION
from sgt.api.operations import Operation
from sgt.api.pipeline import OperationRouter
from sgt.api.schemas import SuggestSamplesRequest
from sgt.services.context import ServiceContext
from sgt.services.suggestion import suggest_samples
from sgt.services.users import CurrentUser

router = OperationRouter(tags=["run"])


def suggest(ctx: ServiceContext, user: CurrentUser, request: SuggestSamplesRequest) -> list[int]:
    candidates = matrix_of(request.candidates, field="candidates")
    request.candidates = []
    return suggest_samples(
        ctx,
        user,
        app_name=request.app_name,
        name=request.name,
        candidates=candidates,
        k=request.k,
    )


router.add_authenticated(
    Operation(
        "/public/suggest_sgt_model_samples",
        SuggestSamplesRequest,
        RUN_EXCEPTION,
        "Which k of m candidate inputs (m x in_size) to label next",
        response_type=list[int],
        notes="Extension (docs/uncertainty.md): k distinct indices into `candidates`, the rows "
        "whose labels would most improve the model, chosen as a batch that accounts for "
        "redundancy (greedy variance reduction under a GP, else spread-weighted farthest "
        "point). Bad candidates (shape, non-finite cells) and k outside 1..m are "
        "RunWeightsNetException; `candidates` may be a `Float32Array` object.",
    ),
    suggest,
)
