"""Settings: one frozen object built once by `load_settings()` and passed down.

Sources, strongest first: keyword overrides, `SGT_*` environment variables (case-insensitive, so
the original deployment's `sgt_host`, `sgt_port`, `sgt_device` keep working, and `sgtone_key` is an
alias of the system key), the env file named by `SGT_ENV_FILE` / `sgt_env_file`, then `./sgt.env`
and `./.env`. Nothing here runs on import.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ENV_FILES = ("sgt.env", ".env")
DEFAULT_KEEP_VERSIONS = 10


class Settings(BaseSettings):
    """Every setting of SGT; each `description` is the help line shown in the README."""

    model_config = SettingsConfigDict(
        env_prefix="SGT_",
        case_sensitive=False,
        frozen=True,
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(
        Path("sgt-data"),
        description="Directory for the embedded SQLite database and the generated system key.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the database; empty means SQLite at DATA_DIR/sgt.db. "
        "Use postgresql+psycopg://user@host/db for several machines.",
    )
    system_key: str | None = Field(
        None,
        validation_alias=AliasChoices("SGT_SYSTEM_KEY", "sgtone_key"),
        description="System key for /private/update_auth_token (alias: sgtone_key). Empty: "
        "generated on first start into DATA_DIR/system_key.",
    )
    host: str = Field("127.0.0.1", description="Address `sgt serve` listens on (alias: sgt_host).")
    port: int = Field(6006, ge=0, le=65535, description="Port of `sgt serve` (alias: sgt_port).")
    api_workers: int = Field(1, ge=1, le=64, description="API processes started by `sgt serve`.")
    embedded_trainer: bool = Field(
        True, description="Whether `sgt serve` also starts one trainer process beside the API."
    )
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Torch device for training and inference (alias: sgt_device)."
    )
    torch_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Torch threads: in `sgt worker`, torch's own threads (0: torch decides; the "
        "embedded trainer of `sgt serve` uses 1); in the API, threads per large prediction "
        "(0: one per CPU).",
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")

    max_in_size: int = Field(16384, ge=1, description="Largest in_size a model may have.")
    max_out_size: int = Field(300_000, ge=1, description="Largest out_size a model may have.")
    max_parameters: int = Field(
        50_000_000,
        ge=1,
        description="Largest parameter count a model may allocate (its model type judges).",
    )
    max_client_data_bytes: int = Field(
        1 << 20, ge=2, description="Largest client_data, measured as compact JSON."
    )
    max_name_chars: int = Field(
        256, ge=1, description="Longest name, app_name, secret_id, secret_key or doc."
    )
    max_body_bytes: int = Field(
        1 << 29, ge=1024, description="Largest request body (512 MiB fits 50,000 x 256 floats)."
    )
    model_cache_size: int = Field(
        32, ge=1, description="Loaded models kept in memory per API process."
    )
    auth_failure_burst_per_key: int = Field(
        5,
        ge=1,
        description="Checks of one secret_id's key from one client address that may fail in a "
        "row before that pair is throttled (docs/security.md).",
    )
    auth_failure_burst_per_address: int = Field(
        20,
        ge=1,
        description="Failed key checks one client address may make in a row, over all "
        "secret_ids, before it is throttled.",
    )
    auth_failure_refill_seconds: float = Field(
        2.0,
        gt=0,
        description="A throttled pair or address regains one key check this often; the "
        "longest wait a throttled client is told.",
    )
    trust_forwarded_for: bool = Field(
        False,
        description="Take the client address from the last X-Forwarded-For entry (set only "
        "behind a reverse proxy that sets it); otherwise the connection's peer address.",
    )

    lease_seconds: float = Field(
        30.0,
        gt=0,
        description="A trainer's claim on a model expires this long after its last "
        "heartbeat (judged by the database clock).",
    )
    heartbeat_seconds: float = Field(5.0, gt=0, description="How often a trainer renews its lease.")
    checkpoint_seconds: float = Field(
        10.0, gt=0, description="Longest time between two checkpoints of an improving model."
    )
    poll_seconds: float = Field(
        1.0, gt=0, description="How often an idle trainer looks for work (SQLite)."
    )
    max_train_seconds: float = Field(
        600.0, gt=0, description="Longest one training run may last before it is marked converged."
    )
    keep_versions: int = Field(
        DEFAULT_KEEP_VERSIONS,
        ge=1,
        description="Converged versions kept per model for rollback; older ones are pruned.",
    )
    trainer_stale_seconds: float = Field(
        60.0,
        gt=0,
        description="With the embedded trainer on, /readyz answers 503 when no trainer has "
        "beaten (database clock) for longer than this; /metrics counts trainers beaten within it.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value.removeprefix("postgresql://")
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sgt.db').resolve()}"

    @property
    def is_embedded_database(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


def env_files(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The env files to read: the one named by SGT_ENV_FILE, else the defaults that exist."""
    environ = dict(os.environ if environ is None else environ)
    for name, value in environ.items():
        if name.lower() == "sgt_env_file" and value:
            return (value,)
    return DEFAULT_ENV_FILES


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from overrides, the environment and env files."""
    return Settings(_env_file=env_files(), **overrides)  # type: ignore[call-arg]


def settings_to_environment(settings: Settings) -> dict[str, str]:
    """The `SGT_*` variables that rebuild `settings` in a child process."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        out[f"SGT_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return out
