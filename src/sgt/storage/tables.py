"""ORM classes of every table (*Row), nothing else. Changing one needs an Alembic revision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    secret_id: Mapped[str] = mapped_column(String(512), unique=True)
    # scrypt(secret_key, salt): the plain key is never stored.
    key_hash: Mapped[bytes] = mapped_column(LargeBinary)
    key_salt: Mapped[bytes] = mapped_column(LargeBinary)
    doc: Mapped[str] = mapped_column(Text, default="")
    end_time: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)  # naive UTC
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("owner_id", "app_name", "name", name="uq_models_key"),
        # Ids are never reused: API processes cache loaded weights by (model id, version).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    app_name: Mapped[str] = mapped_column(String(512))
    name: Mapped[str] = mapped_column(String(512))
    model_type: Mapped[str] = mapped_column(String(64))
    in_size: Mapped[int] = mapped_column(Integer)
    out_size: Mapped[int] = mapped_column(Integer)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    client_data: Mapped[str] = mapped_column(Text, default="null")  # compact JSON text
    seed: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SampleBatchRow(Base):
    """One upload's samples as little-endian float32 matrices (rows x in_size, rows x out_size)."""

    __tablename__ = "sample_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    row_count: Mapped[int] = mapped_column(Integer)
    inputs: Mapped[bytes] = mapped_column(LargeBinary)
    targets: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class CheckpointRow(Base):
    """The current weights of a model: one row, replaced in one transaction (atomic)."""

    __tablename__ = "checkpoints"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)
    model_type: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    trained_sample_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class TrainingRow(Base):
    """Where the API and the trainers meet: the training state and lease of one model."""

    __tablename__ = "training"
    __table_args__ = (Index("ix_training_state_queued_at", "state", "queued_at"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    # Bumped by every upload or clear; a run trained on an older data_version is stale.
    data_version: Mapped[int] = mapped_column(Integer, default=0)
    sample_count: Mapped[int] = mapped_column(Integer, default=0)
    trained_sample_count: Mapped[int] = mapped_column(Integer, default=0)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    steps: Mapped[int] = mapped_column(BigInteger, default=0)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    loss_history: Mapped[str] = mapped_column(Text, default="[]")  # JSON [[steps, train, val]]
    # JSON of the served weights' `ValidationErrors`; NULL while they have no validation rows.
    validation_errors: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class LeaseLogRow(Base):
    """Every claim of a model by a trainer, kept so overlapping leases can be audited."""

    __tablename__ = "lease_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    worker: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(DateTime)
    released_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The lease's expiry as last renewed: where an unreleased claim (a killed trainer) ended.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ModelVersionRow(Base):
    """A converged checkpoint kept for rollback: the last K per model (see storage/versions.py)."""

    __tablename__ = "model_versions"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1, 2, ... per model
    model_type: Mapped[str] = mapped_column(String(64))
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    sample_count: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    val_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)  # naive UTC, database clock
    # The checkpoints.version under which these weights were last put in the checkpoint row:
    # the version is served while the two are equal (a later checkpoint or rollback differs).
    checkpoint_version: Mapped[int] = mapped_column(Integer)
    # The training row's validation errors (JSON) when the version was kept: back with a rollback.
    validation_errors: Mapped[str | None] = mapped_column(Text, nullable=True)


class TrainerRow(Base):
    """A running trainer's heartbeat: one row per trainer process (or thread), beaten by it,
    deleted when it stops cleanly; a killed trainer's row goes stale and is pruned later."""

    __tablename__ = "trainers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime)  # database clock, naive UTC
    last_beat_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The model it trains now; no foreign key: a trainer's beat never waits on a model's delete.
    model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # How often the supervisor (`sgt serve`) restarted this trainer before this process.
    restarts: Mapped[int] = mapped_column(Integer, default=0)
