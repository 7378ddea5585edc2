"""What every use case needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sgt.config import Settings
from sgt.domain.models import ModelLimits
from sgt.ml.cache import ModelCache
from sgt.ml.parallel import RowParallelism, usable_cpus
from sgt.services.secrets import KeyVerifier, resolve_system_key
from sgt.services.throttle import AuthThrottle
from sgt.storage.engine import Database
from sgt.storage.schema import migrate


@dataclass
class ServiceContext:
    db: Database
    limits: ModelLimits
    system_key: str
    key_verifier: KeyVerifier
    auth_throttle: AuthThrottle
    model_cache: ModelCache
    # How a large prediction is split across threads (the API runs torch single-threaded).
    parallelism: RowParallelism
    device: str

    def close(self) -> None:
        self.db.dispose()


def open_context(settings: Settings, *, run_migrations: bool = True) -> ServiceContext:
    """Connect to the database (migrating it when asked) and build the in-memory helpers."""
    if settings.is_embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        if run_migrations:
            migrate(db)
        return ServiceContext(
            db=db,
            limits=ModelLimits(
                max_in_size=settings.max_in_size,
                max_out_size=settings.max_out_size,
                max_parameters=settings.max_parameters,
                max_client_data_bytes=settings.max_client_data_bytes,
            ),
            system_key=resolve_system_key(settings.system_key, settings.data_dir),
            key_verifier=KeyVerifier(),
            auth_throttle=AuthThrottle(
                burst_per_pair=settings.auth_failure_burst_per_key,
                burst_per_address=settings.auth_failure_burst_per_address,
                refill_seconds=settings.auth_failure_refill_seconds,
            ),
            model_cache=ModelCache(capacity=settings.model_cache_size, device=settings.device),
            parallelism=RowParallelism(settings.torch_threads or usable_cpus()),
            device=settings.device,
        )
    except BaseException:
        db.dispose()  # a failed start leaves no connection behind (a PostgreSQL drop waits on it)
        raise
