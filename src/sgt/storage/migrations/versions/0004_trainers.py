"""trainers: a heartbeat row per running trainer, for readiness, /metrics and `sgt admin trainers`

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 14:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trainers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_beat_at", sa.DateTime(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_trainers_last_beat_at", "trainers", ["last_beat_at"])


def downgrade() -> None:
    op.drop_index("ix_trainers_last_beat_at", table_name="trainers")
    op.drop_table("trainers")
