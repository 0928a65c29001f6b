"""``jobs_report``: the jobs table in numbers, materialised hourly so the UI charts it."""

import dagster as dg

from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import summary
from imgpipe_resources.db.models import JobStatus


@dg.asset(group_name="operations", kinds={"sql"})
def jobs_report(db: JobsDatabase) -> dg.MaterializeResult:
    """Jobs by state, failures by error code, and cost today and in total: what `imgpipe
    status` prints. Numbers are plotted across materialisations in the asset's page, so a
    rising FAILED count or cost shows at a glance."""
    with db.session() as session:
        report = summary(session)
    by_status = report["by_status"]
    rows = "\n".join(f"| {code} | {n} |" for code, n in sorted(report["failures_by_code"].items()))
    metadata: dict[str, dg.RawMetadataValue] = {
        f"jobs_{state.value.lower()}": int(by_status.get(state.value, 0)) for state in JobStatus
    }
    metadata.update(
        {
            "jobs_total": report["jobs"],
            "cost_usd_today": round(report["cost_usd_today"], 4),
            "cost_usd_total": round(report["cost_usd_total"], 4),
            "failures_by_code": dg.MetadataValue.json(report["failures_by_code"]),
            "failures": dg.MetadataValue.md(
                "| error | jobs |\n|---|---|\n" + rows if rows else "no failed jobs"
            ),
        }
    )
    return dg.MaterializeResult(metadata=metadata)


jobs_report_job = dg.define_asset_job(
    "jobs_report_job", selection=[jobs_report], description="Refresh jobs_report."
)
jobs_report_schedule = dg.ScheduleDefinition(
    name="jobs_report_schedule",
    job=jobs_report_job,
    cron_schedule="0 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
