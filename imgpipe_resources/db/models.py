"""Tables of the jobs database. Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class JobStatus(StrEnum):
    NEW = "NEW"
    QUEUED = "QUEUED"
    SEGMENTING = "SEGMENTING"
    BG_GENERATING = "BG_GENERATING"
    COMPOSITING = "COMPOSITING"
    AWAITING_REVIEW = "AWAITING_REVIEW"  # a composite waits for a person before the shop
    UPLOADING = "UPLOADING"
    DONE = "DONE"
    FAILED = "FAILED"


class Job(Base):
    """One source image rendered in one theme, from intake to the shop."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("sku", "img_sha256", "theme", name="uq_jobs_sku_sha_theme"),
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
        Index("ix_jobs_sku_sha", "sku", "img_sha256"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_partition_key", "partition_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64))
    img_sha256: Mapped[str] = mapped_column(String(64))
    theme: Mapped[str] = mapped_column(String(64))
    partition_key: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.NEW.value)
    source_url: Mapped[str | None] = mapped_column(Text)
    original_key: Mapped[str | None] = mapped_column(String(512))
    mask_key: Mapped[str | None] = mapped_column(String(512))
    background_key: Mapped[str | None] = mapped_column(String(512))
    composite_key: Mapped[str | None] = mapped_column(String(512))
    shopify_product_id: Mapped[str | None] = mapped_column(String(128))
    shopify_variant_id: Mapped[str | None] = mapped_column(String(128))
    shopify_media_id: Mapped[str | None] = mapped_column(String(128))
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal("0"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    # Why the composite waits for a person (a review theme, a doubtful cut-out's gate).
    review_reason: Mapped[str | None] = mapped_column(Text)
    # The failure last posted to Slack for this job ("stage:code"): each is posted once.
    alerted: Mapped[str | None] = mapped_column(String(128))
    # Times the reconciliation asked for this job again after it waited with no live run.
    reconciled: Mapped[int] = mapped_column(Integer, default=0)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class ShopifyMap(Base):
    """Cache of SKU -> Shopify product and variant ids."""

    __tablename__ = "shopify_map"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    product_id: Mapped[str | None] = mapped_column(String(128))
    variant_id: Mapped[str | None] = mapped_column(String(128))
    handle: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(Text)
    sync_status: Mapped[str] = mapped_column(String(32), default="pending")
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class Metadata(Base):
    """System key-value store: poll cursors and the like."""

    __tablename__ = "metadata"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class IntakeStatus(StrEnum):
    ACCEPTED = "ACCEPTED"  # a new image: the intake sensor will make a partition of it
    REJECTED = "REJECTED"  # invalid or over a limit; ``reason`` says why
    IGNORED = "IGNORED"  # an event imgpipe does not act on (e.g. image.deleted), kept as record


class IntakeRecord(Base):
    """A photo announced by 3JMS (webhook or poll) or by ``imgpipe ingest``.

    The intake sensor reads accepted records in id order after its cursor.
    """

    __tablename__ = "intake"
    __table_args__ = (
        UniqueConstraint("delivery_id", name="uq_intake_delivery_id"),
        UniqueConstraint("event", "sku", "img_sha256", name="uq_intake_event_sku_sha"),
        UniqueConstraint("partition_key", name="uq_intake_partition_key"),
        Index("ix_intake_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(255))
    img_sha256: Mapped[str] = mapped_column(String(64))
    image_url: Mapped[str | None] = mapped_column(Text)
    original_key: Mapped[str | None] = mapped_column(String(512))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    partition_key: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Prediction(Base):
    """A remote prediction (Replicate), recorded as soon as it exists: the proof of payment."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_work_key", "work_key", "created_at"),
        Index("ix_predictions_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    work_key: Mapped[str] = mapped_column(String(255))  # what was asked: stage, input, model
    stage: Mapped[str] = mapped_column(String(32))
    sku: Mapped[str | None] = mapped_column(String(64))
    img_sha256: Mapped[str | None] = mapped_column(String(64))
    theme: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    output_key: Mapped[str | None] = mapped_column(String(512))
    predict_time_s: Mapped[float | None] = mapped_column()
    cost_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6), default=Decimal("0"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
