"""The versions use cases as a user meets them: only the owner sees or rolls back a model's
versions, and the setting that bounds them is validated."""

from __future__ import annotations

import pydantic
import pytest

from factories import make_model, make_user
from sgt.config import Settings
from sgt.errors import ModelNotFound
from sgt.services import versions
from sgt.services.context import ServiceContext


def test_another_users_model_has_no_versions_to_list_or_roll_back(ctx: ServiceContext) -> None:
    alice, bob = make_user(ctx), make_user(ctx)
    make_model(ctx, alice, name="arm", is_public=True)
    assert versions.list_versions(ctx, alice, app_name="app", name="arm") == []
    with pytest.raises(ModelNotFound):
        versions.list_versions(ctx, bob, app_name="app", name="arm")
    with pytest.raises(ModelNotFound, match="'arm'"):
        versions.roll_back_model(ctx, bob, app_name="app", name="arm", version=1)


def test_an_untrained_model_has_no_version_to_roll_back_to(ctx: ServiceContext) -> None:
    alice = make_user(ctx)
    make_model(ctx, alice, name="arm")
    with pytest.raises(ModelNotFound, match="no version 1"):
        versions.roll_back_model(ctx, alice, app_name="app", name="arm", version=1)


def test_keep_versions_defaults_to_10_and_must_keep_one() -> None:
    assert Settings().keep_versions == 10
    with pytest.raises(pydantic.ValidationError):
        Settings(keep_versions=0)
