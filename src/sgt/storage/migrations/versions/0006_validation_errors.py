"""training.validation_errors: the served weights' errors on their validation rows (JSON);
model_versions.validation_errors: a kept version's, restored with it on rollback

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("training", "model_versions"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("validation_errors", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("model_versions", "training"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("validation_errors")
