"""lease_log.expires_at: where a claim that was never released (a killed trainer) ended

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lease_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lease_log", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
