"""Settings: defaults, SGT_* variables, the original deployment's aliases, env files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sgt.config import Settings, load_settings, settings_to_environment


@pytest.fixture(autouse=True)
def no_env_files_of_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so ./sgt.env and ./.env are the test's own."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_defaults_are_the_original_address_and_the_embedded_database() -> None:
    settings = load_settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 6006)
    assert settings.system_key is None
    assert settings.device == "cpu"
    assert settings.is_embedded_database
    expected = (Path("sgt-data") / "sgt.db").resolve()
    assert settings.effective_database_url == f"sqlite:///{expected}"


def test_sgt_variables_configure_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGT_PORT", "7001")
    monkeypatch.setenv("SGT_HOST", "0.0.0.0")
    monkeypatch.setenv("SGT_SYSTEM_KEY", "sys")
    monkeypatch.setenv("SGT_DATA_DIR", "/srv/sgt")
    monkeypatch.setenv("SGT_MAX_IN_SIZE", "64")
    monkeypatch.setenv("SGT_EMBEDDED_TRAINER", "false")
    settings = load_settings()
    assert (settings.port, settings.host, settings.system_key) == (7001, "0.0.0.0", "sys")
    assert settings.data_dir == Path("/srv/sgt")
    assert settings.max_in_size == 64
    assert settings.embedded_trainer is False


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("sgtone_key", "original-key", "system_key", "original-key"),
        ("sgt_port", "6100", "port", 6100),
        ("sgt_host", "10.0.0.1", "host", "10.0.0.1"),
        ("sgt_device", "cuda", "device", "cuda"),
    ],
)
def test_the_original_names_are_aliases(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(load_settings(), field) == expected


def test_an_env_file_named_by_sgt_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("SGT_PORT=7200\nsgtone_key=from-file\n")
    monkeypatch.setenv("SGT_ENV_FILE", str(env_file))
    settings = load_settings()
    assert (settings.port, settings.system_key) == (7200, "from-file")


def test_the_lower_case_sgt_env_file_alias(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / "old.env"
    env_file.write_text("sgt_port=7300\n")
    monkeypatch.setenv("sgt_env_file", str(env_file))
    assert load_settings().port == 7300


def test_sgt_env_in_the_working_directory(no_env_files_of_the_repository: Path) -> None:
    (no_env_files_of_the_repository / "sgt.env").write_text("SGT_PORT=7400\n")
    assert load_settings().port == 7400


def test_variables_beat_env_files_and_overrides_beat_both(
    no_env_files_of_the_repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (no_env_files_of_the_repository / "sgt.env").write_text("SGT_PORT=7400\nSGT_HOST=file\n")
    monkeypatch.setenv("SGT_PORT", "7500")
    settings = load_settings()
    assert (settings.port, settings.host) == (7500, "file")
    assert load_settings(port=7600).port == 7600


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("", None),
    ],
)
def test_database_urls_are_normalised(url: str, expected: str | None) -> None:
    settings = Settings(database_url=url)
    assert settings.database_url == expected
    assert settings.is_embedded_database is (expected is None)


@pytest.mark.parametrize(
    ("field", "value"), [("port", 70000), ("device", "tpu"), ("heartbeat_seconds", 0)]
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


def test_a_child_process_environment_rebuilds_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    original = Settings(
        data_dir=tmp_path,
        system_key="k",
        port=6123,
        embedded_trainer=False,
        checkpoint_seconds=0.5,
        database_url="postgres://u@h/db",
    )
    for name, value in settings_to_environment(original).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original
