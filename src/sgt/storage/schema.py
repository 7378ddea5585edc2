"""Schema migrations (Alembic), run by `sgt admin migrate` and on every start of `sgt serve`."""

from __future__ import annotations

from collections.abc import Callable
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
    _run(database, lambda config: command.upgrade(config, revision))


def downgrade(database: Database, revision: str) -> None:
    """Take the schema back to `revision` (for tests of the migrations themselves)."""
    _run(database, lambda config: command.downgrade(config, revision))


def _run(database: Database, step: Callable[[Config], None]) -> None:
    config = _alembic_config()
    if not database.is_sqlite:
        with database.engine.begin() as connection:
            # Several servers may start at once: one migrates, the others wait for it.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7606)")
            config.attributes["connection"] = connection
            step(config)
        return
    # SQLite: one writer at a time (BEGIN IMMEDIATE), and foreign keys off while tables are
    # rebuilt, or dropping the old copy of a table would cascade into its children. The pragma
    # is ignored inside a transaction, so it is set on the raw connection before BEGIN.
    with database.engine.execution_options(sqlite_immediate=True).connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config)
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def is_up_to_date(database: Database) -> bool:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head
