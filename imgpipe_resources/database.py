"""The jobs database as a Dagster resource, and the one place jobs rows change state.

The stages ask it to move an image's jobs into a stage, record what a stage left, hold a
composite for review or fail a job with a named error; the state machine underneath
(``db.jobs``) refuses anything illegal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import dagster as dg
from pydantic import Field
from sqlalchemy.orm import Session

from imgpipe_assets.errors import SourceMissing, UnknownImage
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import check_schema, redact, session_scope
from imgpipe_resources.db.jobs import (
    ImageRef,
    ensure_jobs,
    enter_stage,
    fail,
    finish,
    get_job,
    hold_for_review,
    jobs_for_image,
)
from imgpipe_resources.db.models import Job, JobStatus


class JobsDatabase(dg.ConfigurableResource):
    """SQL database holding jobs, intake, shopify_map and metadata (SQLite or PostgreSQL).

    Refuses to run on a schema older than the code; `imgpipe db upgrade` brings it up to date.
    """

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///.imgpipe/imgpipe.db")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_schema(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.url) as session:
            yield session

    @property
    def display_url(self) -> str:
        return redact(self.url)

    # --- what the stages ask of it ----------------------------------------------------

    def image(self, partition_key: str) -> tuple[ImageRef, dict[str, Any]]:
        """The image behind an image partition key, and the payload it arrived with."""
        with self.session() as session:
            rec = intake.by_partition_key(session, partition_key)
            if rec is None:
                raise UnknownImage(f"no intake record for image partition {partition_key}")
            ref = ImageRef(
                partition_key=partition_key,
                sku=rec.sku,
                sha256=rec.img_sha256,
                source_url=rec.image_url,
                original_key=rec.original_key,
            )
            return ref, dict(rec.payload or {})

    def enter(
        self, ref: ImageRef, themes: Iterable[str], stage: JobStatus, run_id: str
    ) -> list[Job]:
        """Move the image's jobs for ``themes`` into working ``stage`` (creating missing
        rows), recording the run that works on them; the rows as they now are."""
        with self.session() as session:
            jobs = ensure_jobs(session, ref, list(themes))
            for job in jobs:
                enter_stage(job, stage)
                job.dagster_run_id = run_id
            return jobs

    def record(self, partition_key: str, theme: str, **fields: Any) -> Job:
        """Write what a stage left on the job (storage keys, cost, Shopify ids); a
        recorded Shopify media finishes it (DONE)."""
        with self.session() as session:
            job = get_job(session, partition_key, theme)
            if job is None:
                raise SourceMissing(f"no job for {partition_key} in {theme}")
            for name, value in fields.items():
                setattr(job, name, value)
            if fields.get("shopify_media_id"):
                finish(job)
            return job

    def record_cutout(self, partition_key: str, mask: str, original: str, cost_usd: float) -> None:
        """The image's cut-out and original on every job of the image; the cut-out is
        shared by its themes, and so is its cost."""
        with self.session() as session:
            jobs = list(jobs_for_image(session, partition_key))
            share = Decimal(str(round(cost_usd / max(len(jobs), 1), 6)))
            for job in jobs:
                job.mask_key, job.original_key = mask, original
                job.cost_usd += share

    def record_composite(
        self, partition_key: str, theme: str, composite: str, reason: str | None
    ) -> None:
        """Record the job's composite and hold it for a person (AWAITING_REVIEW) with
        ``reason``, or clear an earlier reason when there is none."""
        with self.session() as session:
            job = get_job(session, partition_key, theme)
            if job is None:
                raise SourceMissing(f"no job for {partition_key} in {theme}")
            job.composite_key = composite
            if reason:
                hold_for_review(job, reason)
            else:
                job.review_reason = None

    def held(self, partition_key: str, theme: str) -> bool:
        """Whether the job's composite waits for a person."""
        with self.session() as session:
            job = get_job(session, partition_key, theme)
            return job is not None and job.status == JobStatus.AWAITING_REVIEW.value

    def fail(self, partition_key: str, theme: str | None, code: str, message: str) -> None:
        """Fail the job (or, with no theme, every job of the image) with a named error."""
        with self.session() as session:
            if theme is None:
                jobs = list(jobs_for_image(session, partition_key))
            else:
                job = get_job(session, partition_key, theme)
                jobs = [job] if job is not None else []
            for job in jobs:
                fail(job, code, message)
