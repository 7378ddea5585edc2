"""SQLite: model ids are never reused (AUTOINCREMENT)

Without it SQLite hands a deleted model's id to the next model created, and an API process that
still caches the deleted model's weights under (id, version) could serve them for the new one.
PostgreSQL sequences never reuse ids; nothing changes there. On SQLite the table is rebuilt with
foreign keys off (`sgt.storage.schema.migrate` turns them off), so nothing cascades.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:30:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "models", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "models", recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
