"""The failure sensor: a failed run's images that failed are named, and Slack hears of each
once.

A run fails when any one of its partitions fails; the partitions that made it are fine and
wait for their next stage. So only the jobs the run really lost are touched: those still in
a working stage whose output was never recorded (the run's process died under them) become
``RUN_FAILED``; images that failed with a named error already carry it. Each failed image
is posted to Slack once per stage and error, however many runs fail over it.
"""

from dataclasses import dataclass

import dagster as dg
from sqlalchemy import select

from imgpipe_assets.errors import RunFailed
from imgpipe_resources.alerts import SlackAlerts
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import STAGE_OUTPUT, fail
from imgpipe_resources.db.models import Job, JobStatus

STAGE_OF_JOB = {
    "mask_job": "mask",
    "render_job": "backgrounds/composite",
    "publish_job": "shopify_media",
}
MAX_LINES = 20
# What each working state must leave on the row before the job can be said to have left it.
_OUTPUT = {
    **{s.value: f for s, f in STAGE_OUTPUT.items()},
    JobStatus.UPLOADING.value: "shopify_media_id",
}


@dataclass(frozen=True)
class FailedImage:
    sku: str
    theme: str
    code: str
    message: str


def failure_report(db: JobsDatabase, run_id: str, job_name: str, message: str) -> list[FailedImage]:
    """Mark FAILED the run's jobs it left in a working stage without that stage's output;
    return the run's failed jobs not yet reported for this stage and error (and mark them
    reported)."""
    stage = STAGE_OF_JOB.get(job_name, job_name)
    report = []
    with db.session() as session:
        for job in session.scalars(select(Job).where(Job.dagster_run_id == run_id)):
            output = _OUTPUT.get(job.status)
            if output is not None and getattr(job, output) is None:
                fail(job, RunFailed.code, f"{job_name} failed: {message}")
            if job.status != JobStatus.FAILED.value:
                continue
            said = f"{stage}:{job.error_code}"
            if job.alerted == said:
                continue
            job.alerted = said
            report.append(
                FailedImage(job.sku, job.theme, str(job.error_code), job.error_message or "")
            )
    return report


@dg.run_failure_sensor(
    name="failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks FAILED the jobs a failed run lost (left mid-stage without output) and "
    "posts each failed image to Slack once per stage and error (when SLACK_WEBHOOK_URL is "
    "set), naming SKU, theme, stage and error, with a run link.",
)
def failure_sensor(
    context: dg.RunFailureSensorContext, db: JobsDatabase, alerts: SlackAlerts
) -> None:
    run = context.dagster_run
    message = (context.failure_event.message or "run failed").splitlines()[0][:300]
    failed = failure_report(db, run.run_id, run.job_name, message)
    if not failed:
        context.log.info(f"{run.job_name} failed; every failed image was already reported")
        return
    stage = STAGE_OF_JOB.get(run.job_name, run.job_name)
    lines = [f"*imgpipe: {run.job_name} failed* ({stage}) <{alerts.run_link(run.run_id)}|run>"]
    for image in failed[:MAX_LINES]:
        lines.append(
            f"• {image.sku} / {image.theme} / {stage}: {image.code}: {image.message[:200]}"
        )
    if len(failed) > MAX_LINES:
        lines.append(f"… and {len(failed) - MAX_LINES} more")
    alerts.post("\n".join(lines))
