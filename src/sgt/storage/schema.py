"""Schema migrations (Alembic), run by `sgt admin migrate` and on every start of `sgt serve`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from sgt.storage.engine import Database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start and from several processes."""
    config = _alembic_config()
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several servers may start at once: one migrates, the others wait for it.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7606)")
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def is_up_to_date(database: Database) -> bool:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
