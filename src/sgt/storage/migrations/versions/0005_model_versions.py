"""model versions: the last K converged checkpoints of each model, for rollback

Existing data: the checkpoint of every model that is converged now becomes its version 1 (its
weights, trained sample count, losses and the checkpoint's own time), served. A model still
training or queued gets its first version when that run converges; a model that never trained
has none.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-02 14:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_type", sa.String(length=64), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("sample_count", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float(), nullable=True),
        sa.Column("val_loss", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("checkpoint_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("model_id", "version"),
    )
    op.execute(
        """
        INSERT INTO model_versions (model_id, version, model_type, weights, sample_count,
                                    train_loss, val_loss, created_at, checkpoint_version)
        SELECT c.model_id, 1, c.model_type, c.weights, c.trained_sample_count,
               t.train_loss, t.val_loss, c.created_at, c.version
        FROM checkpoints c JOIN training t ON t.model_id = c.model_id
        WHERE t.state = 'converged'
        """
    )


def downgrade() -> None:
    op.drop_table("model_versions")
