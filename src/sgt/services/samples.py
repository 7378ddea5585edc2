"""Training data use cases: upload samples, clear them, read the training status."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sgt.domain.samples import to_training_arrays
from sgt.domain.training import TrainingStatus
from sgt.services.context import ServiceContext
from sgt.services.models import own_model
from sgt.services.users import CurrentUser
from sgt.storage import checkpoints as checkpoint_store
from sgt.storage import samples as sample_store
from sgt.storage import training as training_store


def upload_samples(
    ctx: ServiceContext,
    user: CurrentUser,
    *,
    app_name: str,
    name: str,
    train_data: Sequence[Sequence[Sequence[float]]] | tuple[np.ndarray, np.ndarray],
) -> int:
    """Append `[input, label]` pairs to the model's set and schedule training.

    Returns the number of samples added once they are committed; raises ModelNotFound, or
    InvalidSamples naming the first bad pair.
    """
    with ctx.db.read() as session:
        model = own_model(session, user, app_name=app_name, name=name)
    inputs, labels = to_training_arrays(train_data, in_size=model.in_size, out_size=model.out_size)
    if len(inputs) == 0:
        return 0
    with ctx.db.write() as session:
        # Read again under the write lock: the model may have been deleted meanwhile.
        model = own_model(session, user, app_name=app_name, name=name)
        now = ctx.db.now(session)
        sample_store.append_samples(
            session, model_id=model.id, inputs=inputs, targets=labels, now=now
        )
        training_store.queue_after_upload(session, model_id=model.id, added=len(inputs), now=now)
    return len(inputs)


def clear_samples(ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str) -> None:
    """Remove every sample of the model; its weights stay."""
    with ctx.db.write() as session:
        model = own_model(session, user, app_name=app_name, name=name)
        sample_store.delete_samples(session, model.id)
        has_weights = checkpoint_store.checkpoint_version(session, model.id) is not None
        training_store.clear_samples_state(
            session, model_id=model.id, has_weights=has_weights, now=ctx.db.now(session)
        )
    ctx.db.reclaim_space()


def read_training_status(
    ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str
) -> TrainingStatus:
    with ctx.db.read() as session:
        model = own_model(session, user, app_name=app_name, name=name)
        return training_store.read_status(session, model.id)
