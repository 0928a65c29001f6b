"""Retention: intermediates of finished images are deleted after JOB_CLEANUP_DAYS, and their
dynamic partitions retired, so storage and the partition set stop growing. The jobs rows stay
as the record. Idempotent and safe to interrupt: each image is handled on its own, and doing
it again finds nothing left to delete."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field
from sqlalchemy import func, select

from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.models import Job
from imgpipe_resources.storage import ObjectStore

FINISHED = ("DONE", "FAILED")


class RetentionConfig(dg.Config):
    days: int = Field(default=30, description="JOB_CLEANUP_DAYS: age of the last update")
    delete_composites: bool = Field(
        default=False, description="Also delete composites (published ones live on in Shopify)"
    )
    max_images: int = Field(default=5000, description="Images retired per run, at most")


def stale_images(db: JobsDatabase, days: int, limit: int) -> list[str]:
    """Image partitions whose every job is finished and untouched for ``days``."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with db.session() as session:
        rows = session.execute(
            select(Job.partition_key)
            .group_by(Job.partition_key)
            .having(func.max(Job.updated_at) < cutoff)
            .having(func.sum(func.cast(Job.status.notin_(FINISHED), type_=Job.attempts.type)) == 0)
            .limit(limit)
        ).all()
    return [r[0] for r in rows]


def _shared(db: JobsDatabase, column: str, value: str, keep: set[str]) -> bool:
    """Whether an object is still referenced by a job of an image that is not retired."""
    with db.session() as session:
        col = getattr(Job, column)
        return bool(
            session.scalar(select(func.count()).where(col == value, Job.partition_key.notin_(keep)))
        )


@dg.op(description="Delete old intermediates and retire their image partitions.")
def retire_old_images(
    context: dg.OpExecutionContext,
    config: RetentionConfig,
    db: JobsDatabase,
    storage: ObjectStore,
) -> dg.Output[int]:
    images = stale_images(db, config.days, config.max_images)
    retiring = set(images)
    deleted = 0
    for key in images:
        with db.session() as session:
            jobs = session.scalars(select(Job).where(Job.partition_key == key)).all()
            keys = {("original_key", j.original_key) for j in jobs if j.original_key}
            keys |= {("mask_key", j.mask_key) for j in jobs if j.mask_key}
            # Procedural backgrounds are shared by every image of a theme: only per-image
            # (generative) ones go with the image.
            keys |= {
                ("background_key", j.background_key)
                for j in jobs
                if j.background_key and j.img_sha256 in j.background_key
            }
            if config.delete_composites:
                keys |= {("composite_key", j.composite_key) for j in jobs if j.composite_key}
        for column, object_key in sorted(keys):
            # Content-addressed objects may serve another SKU's photo that is still live.
            if not _shared(db, column, object_key, retiring) and storage.exists(object_key):
                storage.delete(object_key)
                deleted += 1
        if context.instance.has_dynamic_partition("images", key):
            context.instance.delete_dynamic_partition("images", key)
    context.log.info(f"retired {len(images)} images, deleted {deleted} objects")
    return dg.Output(
        len(images), metadata={"images_retired": len(images), "objects_deleted": deleted}
    )


@dg.job(description="Daily retention: old intermediates deleted, old image partitions retired.")
def retention_job() -> None:
    retire_old_images()


def retention_schedule(days: int, delete_composites: bool) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="retention_schedule",
        job=retention_job,
        cron_schedule="30 3 * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        run_config=dg.RunConfig(
            ops={
                "retire_old_images": RetentionConfig(days=days, delete_composites=delete_composites)
            }
        ),
    )
