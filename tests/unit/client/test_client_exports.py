"""The public surface: `__all__` names exactly what the package exports, like httpx's
tests/test_exported_members.py."""

from __future__ import annotations

import inspect

import sgt.client as sc


def test_all_lists_every_public_member_and_nothing_else():
    public = {
        name
        for name, value in vars(sc).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }

    assert set(sc.__all__) == public
    assert len(sc.__all__) == len(set(sc.__all__))


def test_every_exported_member_is_defined_in_the_client():
    for name in sc.__all__:
        member = getattr(sc, name)
        assert member.__module__.startswith("sgt.client._"), name
        assert member.__doc__, name + " has no docstring"


def test_the_api_exception_names_are_all_exported():
    from sgt.client._errors import API_EXCEPTIONS

    assert set(API_EXCEPTIONS) <= set(sc.__all__)
    assert all(cls.__name__ == name for name, cls in API_EXCEPTIONS.items())
