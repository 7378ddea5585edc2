"""training.validation_errors: the served weights' errors on their validation rows (JSON)

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-02 14:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training", schema=None) as batch_op:
        batch_op.add_column(sa.Column("validation_errors", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training", schema=None) as batch_op:
        batch_op.drop_column("validation_errors")
