"""The failure sensor: a failed run marks its unfinished jobs FAILED and tells Slack."""

import dagster as dg
from sqlalchemy import select

from imgpipe_assets.errors import RunFailed
from imgpipe_resources.alerts import SlackAlerts
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import fail
from imgpipe_resources.db.models import Job, JobStatus

STAGE_OF_JOB = {
    "mask_job": "mask",
    "render_job": "backgrounds/composite",
    "publish_job": "shopify_media",
    "auto_publish_job": "shopify_media",
}
MAX_LINES = 20


def failure_report(db: JobsDatabase, run_id: str, job_name: str, message: str) -> list[Job]:
    """Mark the run's jobs that are still mid-stage FAILED; return every failed job of it."""
    with db.session() as session:
        jobs = session.scalars(select(Job).where(Job.dagster_run_id == run_id)).all()
        for job in jobs:
            # A composite waiting for review finished its stage; it is not lost.
            settled = (
                JobStatus.DONE.value,
                JobStatus.FAILED.value,
                JobStatus.AWAITING_REVIEW.value,
            )
            if job.status not in settled:
                fail(job, RunFailed.code, f"{job_name} failed: {message}")
        return [j for j in jobs if j.status == JobStatus.FAILED.value]


@dg.run_failure_sensor(
    name="failure_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the jobs of a failed run FAILED with the error and posts to Slack "
    "(when SLACK_WEBHOOK_URL is set), naming SKU, theme, stage and error, with a run link.",
)
def failure_sensor(
    context: dg.RunFailureSensorContext, db: JobsDatabase, alerts: SlackAlerts
) -> None:
    run = context.dagster_run
    message = (context.failure_event.message or "run failed").splitlines()[0][:300]
    failed = failure_report(db, run.run_id, run.job_name, message)
    stage = STAGE_OF_JOB.get(run.job_name, run.job_name)
    lines = [f"*imgpipe: {run.job_name} failed* ({stage}) <{alerts.run_link(run.run_id)}|run>"]
    for job in failed[:MAX_LINES]:
        lines.append(
            f"• {job.sku} / {job.theme} / {stage}: {job.error_code}: "
            f"{(job.error_message or '')[:200]}"
        )
    if len(failed) > MAX_LINES:
        lines.append(f"… and {len(failed) - MAX_LINES} more")
    if not failed:
        lines.append(f"• {message}")
    alerts.post("\n".join(lines))
