"""The reconciliation sensor: no job waits for a run that will never come.

A job can be left waiting in a stage with nothing to move it on: its run's process was
killed, a sensor's run request was lost, a daemon stopped between two runs. Every few
minutes this sensor looks for jobs that have waited longer than ``IMGPIPE_RECONCILE_AFTER``
with no queued or running run covering their image, and requests the stage they need again
(a cut-out, the renders, the auto-publishing). Each job is asked for at most
``IMGPIPE_RECONCILE_ATTEMPTS`` times; after that it is ``STRANDED``, a named error a person
can look at. Work already done is found stored and not paid for again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg

from imgpipe_assets.assets.themed import PUBLISH_TAG
from imgpipe_assets.errors import Stranded
from imgpipe_assets.jobs import (
    IN_FLIGHT,
    MASK_JOB,
    PUBLISH_JOB,
    RENDER_JOB,
    mask_job,
    publish_job,
    render_job,
)
from imgpipe_assets.partitions import multi_key, range_tags
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import fail, waiting_since
from imgpipe_resources.db.models import Job
from imgpipe_resources.themes import ThemeLibrary

LOOK_AT = 500  # jobs looked at per tick, oldest first


def live_images(instance: dg.DagsterInstance) -> set[str] | None:
    """Image keys some queued or running run covers; None when a run covers a range (the
    sensor then waits for it, rather than work out the range)."""
    images: set[str] = set()
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=200):
        tags = record.dagster_run.tags
        if "dagster/asset_partition_range_start" in tags:
            return None
        key = tags.get("dagster/partition")
        if key:
            images.add(key.split("|")[0])
    return images


def _need(jobs: list[Job], auto: set[str]) -> str | None:
    """The stage an image's waiting jobs need next: mask, render or publish."""
    if any(j.mask_key is None for j in jobs):
        return MASK_JOB
    if any(j.composite_key is None for j in jobs):
        return RENDER_JOB
    if any(j.theme in auto for j in jobs):
        return PUBLISH_JOB
    return None


def _request(need: str, image: str, themes: list[str], n: int) -> dg.RunRequest:
    """The run for an image's next stage: its cut-out, its renders over every theme, or
    (tagged as the chain's, so what waits for review stays waiting) its publication."""
    run_key = f"reconcile:{need}:{image}:{n}"
    if need == MASK_JOB:
        return dg.RunRequest(run_key=run_key, job_name=MASK_JOB, partition_key=image)
    first, last = str(multi_key(image, themes[0])), str(multi_key(image, themes[-1]))
    tags = range_tags(first, last)
    if need == PUBLISH_JOB:
        tags[PUBLISH_TAG] = "auto"
    return dg.RunRequest(run_key=run_key, job_name=need, tags=tags)


def build_reconcile_sensor(after_s: int, attempts: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="reconcile_sensor",
        jobs=[mask_job, render_job, publish_job],
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Requests again the stage a job needs when it has waited more than "
        f"{after_s} s with no live run for its image; after {attempts} requests it is "
        "STRANDED.",
    )
    def reconcile_sensor(
        context: dg.SensorEvaluationContext, db: JobsDatabase, themes: ThemeLibrary
    ) -> dg.SensorResult | dg.SkipReason:
        live = live_images(context.instance)
        if live is None:
            return dg.SkipReason("a range run is queued or running: waiting for it first")
        theme_list = list(themes.all().values())
        names = [t.name for t in theme_list]
        auto = {t.name for t in theme_list if t.publish == "auto"}
        before = datetime.now(UTC) - timedelta(seconds=after_s)
        requests, stranded = [], 0
        with db.session() as session:
            by_image: dict[str, list[Job]] = defaultdict(list)
            for job in waiting_since(session, before, LOOK_AT):
                if job.partition_key not in live:
                    by_image[job.partition_key].append(job)
            for image, jobs in by_image.items():
                need = _need(jobs, auto)
                if need is None:
                    continue
                if max(j.reconciled for j in jobs) >= attempts:
                    for job in jobs:
                        fail(
                            job,
                            Stranded.code,
                            f"waited in {job.status} with no run to finish it; requested "
                            f"again {job.reconciled} times",
                        )
                    stranded += 1
                    continue
                n = max(j.reconciled for j in jobs) + 1
                for job in jobs:
                    job.reconciled = n
                    job.updated_at = datetime.now(UTC)  # the next look waits its turn
                requests.append(_request(need, image, names, n))
        if not requests and not stranded:
            return dg.SkipReason("no job has waited without a run")
        context.log.info(f"requested {len(requests)} stages again; {stranded} images stranded")
        return dg.SensorResult(run_requests=requests)

    return reconcile_sensor
