"""The intake log: every photo announced to imgpipe, recorded once.

The webhook receiver, the 3JMS poller and ``imgpipe ingest`` all call ``record``; the intake
sensor reads accepted records after its cursor. Nothing here downloads or calls Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from imgpipe_assets.errors import ImgpipeError, TooManyImages
from imgpipe_resources.db.jobs import retry_fetch
from imgpipe_resources.db.models import IntakeRecord, IntakeStatus, Metadata
from imgpipe_resources.keys import (
    SHORT_SHA,
    image_partition_key,
    validate_sha256,
    validate_sku,
)

IMAGE_CREATED = "image.created"


@dataclass(frozen=True)
class IntakeOutcome:
    record_id: int
    status: str
    created: bool
    reason: str | None
    partition_key: str | None


def _outcome(record: IntakeRecord, created: bool) -> IntakeOutcome:
    return IntakeOutcome(record.id, record.status, created, record.reason, record.partition_key)


def _existing(
    session: Session, delivery_id: str | None, event: str, sku: str, sha256: str
) -> IntakeRecord | None:
    if delivery_id:
        found = session.scalars(
            select(IntakeRecord).where(IntakeRecord.delivery_id == delivery_id)
        ).one_or_none()
        if found is not None:
            return found
    return session.scalars(
        select(IntakeRecord).where(
            IntakeRecord.event == event,
            IntakeRecord.sku == sku,
            IntakeRecord.img_sha256 == sha256,
        )
    ).one_or_none()


def _free_partition_key(session: Session, sku: str, sha256: str) -> str:
    """The image's key, with a longer sha prefix in the (astronomically rare) case that
    another photo of the same SKU already holds the short one."""
    for digits in range(SHORT_SHA, 65, 4):
        key = image_partition_key(sku, sha256, digits)
        holder = session.scalar(
            select(IntakeRecord.img_sha256).where(IntakeRecord.partition_key == key)
        )
        if holder is None or holder == sha256:
            return key
    raise ImgpipeError(f"no free partition key for {sku}/{sha256}")


def _lock_sku(session: Session, sku: str) -> None:
    """Serialise announcements of one SKU until the transaction ends, so the per-SKU limit
    and the choice of a free partition key hold when many arrive at once. PostgreSQL: an
    advisory lock on the SKU. SQLite: the database's write lock, taken before reading (a
    write that changes nothing), so no other writer slips in between the count and the
    insert."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(hashtext(:sku))"), {"sku": sku})
    elif dialect == "sqlite":
        session.execute(text("update intake set id = id where 0"))


def _corrects(found: IntakeRecord, delivery_id: str | None, image_url: str | None) -> bool:
    """Whether this announcement names a new URL for an accepted photo (a new delivery, not
    a replay of the old one)."""
    return (
        found.status == IntakeStatus.ACCEPTED.value
        and found.partition_key is not None
        and image_url is not None
        and image_url != found.image_url
        and (delivery_id is None or delivery_id != found.delivery_id)
    )


def record(
    session: Session,
    *,
    event: str,
    sku: str,
    sha256: str,
    source: str,
    image_url: str | None = None,
    original_key: str | None = None,
    delivery_id: str | None = None,
    payload: dict[str, Any] | None = None,
    max_images_per_sku: int | None = None,
) -> IntakeOutcome:
    """Record one announcement; a repeated delivery or image returns the first record."""
    sha256 = sha256.lower()
    _lock_sku(session, sku)
    found = _existing(session, delivery_id, event, sku, sha256)
    if found is not None:
        if _corrects(found, delivery_id, image_url) and retry_fetch(
            session, str(found.partition_key)
        ):
            found.image_url = image_url
            again = "announced again with a new URL after its download failed: fetched again"
            return IntakeOutcome(found.id, found.status, True, again, found.partition_key)
        return _outcome(found, created=False)

    status, reason, key = IntakeStatus.ACCEPTED, None, None
    if event != IMAGE_CREATED:
        status, reason = IntakeStatus.IGNORED, f"event {event!r} is recorded, not processed"
    else:
        try:
            key = _free_partition_key(session, validate_sku(sku), validate_sha256(sha256))
        except ImgpipeError as exc:
            status, reason = IntakeStatus.REJECTED, f"{exc.code}: {exc.message}"
    if status is IntakeStatus.ACCEPTED and max_images_per_sku is not None:
        accepted = session.scalar(
            select(func.count()).where(
                IntakeRecord.sku == sku, IntakeRecord.status == IntakeStatus.ACCEPTED.value
            )
        )
        if (accepted or 0) >= max_images_per_sku:
            status, key = IntakeStatus.REJECTED, None
            reason = (
                f"{TooManyImages.code}: SKU {sku} already has {accepted} images "
                f"(limit {max_images_per_sku})"
            )

    row = IntakeRecord(
        delivery_id=delivery_id,
        event=event[:64],
        sku=sku[:255],
        img_sha256=sha256[:64],
        image_url=image_url,
        original_key=original_key,
        source=source,
        status=status.value,
        reason=reason,
        partition_key=key,
        payload=payload,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        # Another writer recorded the same delivery or image between our read and insert.
        found = _existing(session, delivery_id, event, sku, sha256)
        if found is None:
            raise
        return _outcome(found, created=False)
    return _outcome(row, created=True)


def accepted_after(session: Session, cursor: int, limit: int) -> Sequence[IntakeRecord]:
    """Accepted records with id > cursor, oldest first, at most ``limit``."""
    return session.scalars(
        select(IntakeRecord)
        .where(IntakeRecord.id > cursor, IntakeRecord.status == IntakeStatus.ACCEPTED.value)
        .order_by(IntakeRecord.id)
        .limit(limit)
    ).all()


def count_accepted_after(session: Session, cursor: int) -> int:
    """How many accepted records wait after ``cursor``."""
    return (
        session.scalar(
            select(func.count())
            .select_from(IntakeRecord)
            .where(IntakeRecord.id > cursor, IntakeRecord.status == IntakeStatus.ACCEPTED.value)
        )
        or 0
    )


def by_partition_key(session: Session, partition_key: str) -> IntakeRecord | None:
    return session.scalars(
        select(IntakeRecord).where(IntakeRecord.partition_key == partition_key)
    ).one_or_none()


def get_meta(session: Session, key: str) -> str | None:
    row = session.get(Metadata, key)
    return row.value if row else None


def set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Metadata, key)
    if row is None:
        session.add(Metadata(key=key, value=value))
    else:
        row.value = value


def reject(session: Session, record_id: int, reason: str) -> None:
    row = session.get(IntakeRecord, record_id)
    if row is not None:
        row.status, row.reason, row.partition_key = IntakeStatus.REJECTED.value, reason, None
