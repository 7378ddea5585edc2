"""The README documents every setting and every endpoint the server serves."""

from __future__ import annotations

from pathlib import Path

from sgt.api.app import create_app
from sgt.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        f"SGT_{name.upper()}"
        for name in Settings.model_fields
        if f"| `SGT_{name.upper()}` |" not in README
    ]
    assert missing == []


def test_every_documented_setting_exists() -> None:
    documented = {line.split("`")[1] for line in README.splitlines() if line.startswith("| `SGT_")}
    assert documented == {f"SGT_{name.upper()}" for name in Settings.model_fields}


def test_every_endpoint_is_in_the_api_reference(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, system_key="k"))
    paths = [
        path.removeprefix("/sgt") for path in app.openapi()["paths"] if path.startswith("/sgt/")
    ]
    assert len(paths) >= 13
    assert [path for path in paths if f"`{path}`" not in README] == []
