"""The job state machine and the queries that move jobs through it.

NEW -> QUEUED -> SEGMENTING -> BG_GENERATING -> COMPOSITING -> UPLOADING -> DONE, any
working state -> FAILED, and back to QUEUED when an earlier stage runs again (a re-run
partition, a retry, a new theme version). A composite that must be seen by a person first (a
theme that publishes after review, or a doubtful cut-out) waits in AWAITING_REVIEW between
COMPOSITING and UPLOADING, with its reason, until someone publishes it. Nothing else:
skipping ahead, leaving NEW other than by queueing, or leaving DONE/FAILED other than by re-
queueing raises ``IllegalTransition`` instead of overwriting the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from imgpipe_assets.errors import IllegalTransition, RunFailed, Stranded
from imgpipe_resources.db.models import Job, JobStatus

S = JobStatus
ORDER = [S.NEW, S.QUEUED, S.SEGMENTING, S.BG_GENERATING, S.COMPOSITING, S.UPLOADING, S.DONE]
RANK = {status: i for i, status in enumerate(ORDER)}
RANK[S.AWAITING_REVIEW] = RANK[S.COMPOSITING]  # a pause after compositing, not a stage

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.NEW: frozenset({S.QUEUED, S.FAILED}),
    S.QUEUED: frozenset({S.SEGMENTING, S.FAILED}),
    # A stage may run again while the job sits in it (a re-run partition, a retried step).
    S.SEGMENTING: frozenset({S.SEGMENTING, S.BG_GENERATING, S.FAILED, S.QUEUED}),
    S.BG_GENERATING: frozenset({S.BG_GENERATING, S.COMPOSITING, S.FAILED, S.QUEUED}),
    S.COMPOSITING: frozenset({S.COMPOSITING, S.AWAITING_REVIEW, S.UPLOADING, S.FAILED, S.QUEUED}),
    S.AWAITING_REVIEW: frozenset({S.AWAITING_REVIEW, S.UPLOADING, S.FAILED, S.QUEUED}),
    S.UPLOADING: frozenset({S.UPLOADING, S.DONE, S.FAILED, S.QUEUED}),
    S.DONE: frozenset({S.QUEUED}),
    S.FAILED: frozenset({S.QUEUED}),
}

# What a stage leaves behind; a job may only pass through a stage whose output is recorded.
STAGE_OUTPUT: dict[JobStatus, str] = {
    S.SEGMENTING: "mask_key",
    S.BG_GENERATING: "background_key",
    S.COMPOSITING: "composite_key",
}


def check_transition(current: str, new: str) -> None:
    if JobStatus(new) not in TRANSITIONS[JobStatus(current)]:
        raise IllegalTransition(f"a job cannot move from {current} to {new}")


def _move(job: Job, new: JobStatus) -> None:
    check_transition(job.status, new)
    if new is S.QUEUED and job.status in (S.DONE, S.FAILED):
        job.error_code = None
        job.error_message = None
    job.status = new.value
    job.updated_at = datetime.now(UTC)


def enter_stage(job: Job, stage: JobStatus) -> None:
    """Move ``job`` into working ``stage`` through legal transitions only.

    A finished, failed or further-along job is re-queued first (one more attempt). A job
    that is behind catches up only through stages whose output is already recorded (a theme
    added after the image's mask was made); anything else is an ``IllegalTransition``.
    """
    current = JobStatus(job.status)
    if current is stage:
        _move(job, stage)
        return
    if current is S.AWAITING_REVIEW and stage is S.UPLOADING:  # a person publishes it
        _move(job, stage)
        return
    if current in (S.DONE, S.FAILED, S.AWAITING_REVIEW) or RANK[current] > RANK[stage]:
        # An earlier stage runs again: everything after it is stale until redone.
        _move(job, S.QUEUED)
        job.attempts += 1
    while JobStatus(job.status) is not stage:
        nxt = ORDER[RANK[JobStatus(job.status)] + 1]
        if nxt is not stage:
            needed = STAGE_OUTPUT.get(nxt)
            if needed is None or getattr(job, needed) is None:
                raise IllegalTransition(
                    f"job {job.sku}/{job.theme} is {job.status}: it cannot enter {stage} "
                    f"before {nxt} has recorded its output"
                )
        _move(job, nxt)


def finish(job: Job) -> None:
    _move(job, S.DONE)


def hold_for_review(job: Job, reason: str) -> None:
    """A composite that waits for a person: AWAITING_REVIEW with the reason."""
    _move(job, S.AWAITING_REVIEW)
    job.review_reason = reason[:4000]


def fail(job: Job, code: str, message: str) -> None:
    """Mark a job FAILED with a named error; a finished job stays DONE (nothing is lost)."""
    if job.status == S.DONE.value:
        return
    if job.status != S.FAILED.value:
        _move(job, S.FAILED)
    job.error_code = code
    job.error_message = message[:4000]


@dataclass(frozen=True)
class ImageRef:
    """A source image as the database knows it."""

    partition_key: str
    sku: str
    sha256: str
    source_url: str | None
    original_key: str | None


def ensure_jobs(session: Session, image: ImageRef, themes: Iterable[str]) -> list[Job]:
    """Return the image's job for each theme, creating missing ones as QUEUED.

    Idempotent: the UNIQUE(sku, img_sha256, theme) constraint keeps one row per job. A row
    made for a theme added later copies what the image already has (original, mask).
    """
    existing = {
        j.theme: j
        for j in session.scalars(
            select(Job).where(Job.sku == image.sku, Job.img_sha256 == image.sha256)
        )
    }
    sibling = next(iter(existing.values()), None)
    jobs = []
    for theme in themes:
        job = existing.get(theme)
        if job is None:
            job = Job(
                sku=image.sku,
                img_sha256=image.sha256,
                theme=theme,
                partition_key=image.partition_key,
                status=S.NEW.value,
                source_url=image.source_url,
                original_key=image.original_key or (sibling.original_key if sibling else None),
                mask_key=sibling.mask_key if sibling else None,
                cost_usd=Decimal("0"),
                attempts=0,
            )
            _move(job, S.QUEUED)
            session.add(job)
            existing[theme] = job
        jobs.append(job)
    session.flush()
    return jobs


# States a job waits in for a run to move it on (AWAITING_REVIEW waits for a person).
WAITING = (S.QUEUED, S.SEGMENTING, S.BG_GENERATING, S.COMPOSITING, S.UPLOADING)


def waiting_since(session: Session, before: datetime, limit: int) -> Sequence[Job]:
    """Jobs that have waited in a working state since before ``before``, oldest first."""
    return session.scalars(
        select(Job)
        .where(Job.status.in_([w.value for w in WAITING]), Job.updated_at < before)
        .order_by(Job.updated_at)
        .limit(limit)
    ).all()


# A job re-queued with this as its last update is due for the reconciliation at its next
# tick, instead of after IMGPIPE_RECONCILE_AFTER.
DUE_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def _due_again(job: Job) -> None:
    """Queue the job again with fresh reconciliation and alert counts, due at once."""
    if job.status != S.QUEUED.value:
        _move(job, S.QUEUED)
    job.reconciled, job.alerted, job.updated_at = 0, None, DUE_NOW


def retry_fetch(session: Session, partition_key: str) -> int:
    """Queue again the image's jobs whose photo could never be fetched (FAILED, no stored
    original), due for the reconciliation at once; how many. A corrected announcement (a
    new URL for the same photo) calls this."""
    jobs = [
        j
        for j in jobs_for_image(session, partition_key)
        if j.status == S.FAILED.value and j.original_key is None
    ]
    for job in jobs:
        _due_again(job)
    return len(jobs)


def requeue_unfinished(session: Session, partition_keys: Iterable[str]) -> int:
    """Queue again, due for the reconciliation at once, the images' jobs that a dead
    process left unfinished: waiting in a stage, or FAILED because their run died
    (``RUN_FAILED``) or never came (``STRANDED``); how many. Only for when nothing else
    works on them (the demo, starting the instance's only daemon)."""
    again = 0
    for key in partition_keys:
        for job in jobs_for_image(session, key):
            died = job.status == S.FAILED.value and job.error_code in (
                RunFailed.code,
                Stranded.code,
            )
            if JobStatus(job.status) in WAITING or died:
                _due_again(job)
                again += 1
    return again


def jobs_for_image(session: Session, partition_key: str) -> Sequence[Job]:
    return session.scalars(select(Job).where(Job.partition_key == partition_key)).all()


def get_job(session: Session, partition_key: str, theme: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.partition_key == partition_key, Job.theme == theme)
    ).one_or_none()


def summary(session: Session) -> dict[str, Any]:
    """Counts by state, failures by error code, and cost: what ``imgpipe status`` prints."""
    by_status = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
    by_error = dict(
        session.execute(
            select(Job.error_code, func.count())
            .where(Job.status == S.FAILED.value)
            .group_by(Job.error_code)
        ).all()
    )
    held = dict(
        session.execute(
            select(Job.review_reason, func.count())
            .where(Job.status == S.AWAITING_REVIEW.value)
            .group_by(Job.review_reason)
        ).all()
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    cost_total = session.scalar(select(func.coalesce(func.sum(Job.cost_usd), 0)))
    cost_today = session.scalar(
        select(func.coalesce(func.sum(Job.cost_usd), 0)).where(Job.updated_at >= today)
    )
    return {
        "by_status": {str(k): int(v) for k, v in by_status.items()},
        "failures_by_code": {str(k): int(v) for k, v in by_error.items()},
        "awaiting_review_by_reason": {str(k): int(v) for k, v in held.items()},
        "cost_usd_total": float(cost_total or 0),
        "cost_usd_today": float(cost_today or 0),
        "jobs": int(sum(by_status.values())),
    }


def recent_jobs(session: Session, limit: int) -> list[dict[str, Any]]:
    """The most recently updated jobs, newest first, as plain values."""
    rows = session.scalars(select(Job).order_by(Job.updated_at.desc()).limit(limit))
    return [
        {
            "sku": j.sku,
            "sha256": j.img_sha256,
            "theme": j.theme,
            "status": j.status,
            "cost_usd": float(j.cost_usd or 0),
            "attempts": j.attempts,
            "error_code": j.error_code,
            "review_reason": j.review_reason,
            "updated_at": j.updated_at.isoformat(),
        }
        for j in rows
    ]
