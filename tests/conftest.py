"""Fixtures every tier shares: a clean SGT_* environment per test, settings on a temporary
SQLite file, and a service context opened on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from factories import SYSTEM_KEY
from sgt.config import Settings
from sgt.services.context import ServiceContext, open_context


def is_sgt_variable(name: str) -> bool:
    """SGT_* and the original deployment's sgt_* / sgtone_key names, in any case."""
    return name.lower().startswith("sgt")


@pytest.fixture(autouse=True)
def clean_sgt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the SGT_* configuration of the shell that started pytest."""
    for name in list(os.environ):
        if is_sgt_variable(name):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh SQLite file, with timings small enough for tests."""
    return Settings(
        data_dir=tmp_path / "data",
        system_key=SYSTEM_KEY,
        lease_seconds=5.0,
        heartbeat_seconds=0.2,
        checkpoint_seconds=0.2,
        poll_seconds=0.05,
        max_train_seconds=60.0,
        torch_threads=1,
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """A service context on the migrated temporary database."""
    opened = open_context(settings)
    yield opened
    opened.close()
