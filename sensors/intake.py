"""The intake sensor: new photos in the intake table become image partitions and mask runs."""

import dagster as dg

from imgpipe_assets.jobs import IN_FLIGHT, MASK_JOB, mask_job
from imgpipe_assets.partitions import image_partitions, range_tags
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db import intake
from imgpipe_resources.db.jobs import ImageRef, ensure_jobs
from imgpipe_resources.themes import ThemeLibrary

# Photos per mask run (and per render run after it). Bounded so a tick stays far below the
# sensor timeout with thousands of records pending, and large enough that a run's start-up
# is a small part of its work.
INTAKE_BATCH = 100
# The smallest batch: the one taken when no mask run is queued or running (the first photos
# of a large intake are cut out quickly, so their renders run beside the next batch's
# cut-outs instead of waiting for a whole batch while a core idles), and the floor of the
# shrinking batches at the end of an intake.
FIRST_BATCH = 25


def batch_size(instance: dg.DagsterInstance, waiting: int) -> int:
    """Photos for this tick's mask run, with ``waiting`` accepted photos not yet taken.

    No mask run in flight: a small batch (the machine is idle: start at once). One in
    flight: a full batch while two or more full batches wait (amortise a run's start-up),
    then half of what waits, down to the small batch. The renders of an intake's last
    batch run alone after its last cut-outs; shrinking the last batches keeps that tail
    short.
    """
    busy = instance.get_run_records(
        filters=dg.RunsFilter(job_name=MASK_JOB, statuses=IN_FLIGHT), limit=1
    )
    if not busy:
        return FIRST_BATCH
    if waiting >= 2 * INTAKE_BATCH:
        return INTAKE_BATCH
    return max(FIRST_BATCH, -(-waiting // 2))


def mask_run_request(keys: list[str]) -> dg.RunRequest:
    """One run for a contiguous batch of newly added image keys."""
    if len(keys) == 1:
        return dg.RunRequest(run_key=f"mask:{keys[0]}", partition_key=keys[0], job_name=MASK_JOB)
    return dg.RunRequest(
        run_key=f"mask:{keys[0]}:{keys[-1]}",
        job_name=MASK_JOB,
        tags=range_tags(keys[0], keys[-1]),
    )


@dg.sensor(
    name="intake_sensor",
    job=mask_job,
    # Every pass of the daemon's sensor loop (it passes every 5 s): a tick reads a bounded
    # batch of new intake rows.
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns photos recorded by the webhook receiver, the 3JMS poller or "
    "`imgpipe ingest` into image partitions, jobs rows and mask runs.",
)
def intake_sensor(
    context: dg.SensorEvaluationContext, db: JobsDatabase, themes: ThemeLibrary
) -> dg.SensorResult | dg.SkipReason:
    cursor = int(context.cursor or 0)
    theme_names = list(themes.all())
    with db.session() as session:
        waiting = intake.count_accepted_after(session, cursor)
        records = (
            intake.accepted_after(session, cursor, batch_size(context.instance, waiting))
            if waiting
            else []
        )
        if not records:
            return dg.SkipReason(f"no new photos after intake record {cursor}")
        keys: list[str] = []
        for rec in records:
            assert rec.partition_key is not None  # accepted records always have one
            ref = ImageRef(
                rec.partition_key, rec.sku, rec.img_sha256, rec.image_url, rec.original_key
            )
            ensure_jobs(session, ref, theme_names)
            keys.append(rec.partition_key)
        last_id = records[-1].id
    new_keys = [k for k in keys if not context.instance.has_dynamic_partition("images", k)]
    # Keys are added in this order, after every existing key: the batch is one contiguous
    # range, so a single run materialises all of it.
    run_requests = [mask_run_request(new_keys)] if new_keys else []
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[image_partitions.build_add_request(new_keys)]
        if new_keys
        else [],
        cursor=str(last_id),
    )
