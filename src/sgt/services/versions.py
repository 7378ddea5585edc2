"""Model version use cases: list a model's kept versions, roll it back to one of them."""

from __future__ import annotations

from sgt.errors import ModelNotFound
from sgt.services.context import ServiceContext
from sgt.services.models import own_model
from sgt.services.users import CurrentUser
from sgt.storage import versions as version_store
from sgt.storage.versions import VersionInfo

__all__ = ["VersionInfo", "list_versions", "roll_back_model"]


def list_versions(
    ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str
) -> list[VersionInfo]:
    """The caller's model's kept versions, newest first; raises ModelNotFound."""
    with ctx.db.read() as session:
        model = own_model(session, user, app_name=app_name, name=name)
        return version_store.list_versions(session, model.id)


def roll_back_model(
    ctx: ServiceContext, user: CurrentUser, *, app_name: str, name: str, version: int
) -> None:
    """Serve `version` of the caller's model from now on, in every API process (the checkpoint
    gets a new version, which is what their caches key on); training stops and the next upload
    trains from it. Raises ModelNotFound for a missing model or version."""
    with ctx.db.write() as session:
        model = own_model(session, user, app_name=app_name, name=name)
        rolled_back = version_store.roll_back_to_version(
            session, model_id=model.id, version=version, now=ctx.db.now(session)
        )
        if not rolled_back:
            raise ModelNotFound(
                f"model '{name}' in app '{app_name}' has no version {version}; "
                "list_sgt_model_versions names the kept ones"
            )
