"""imgpipe's code location: assets, jobs, sensors and the resources of the environment."""

from __future__ import annotations

import dagster as dg

from imgpipe_assets.assets.checks import quality_gates
from imgpipe_assets.assets.mask import mask
from imgpipe_assets.assets.report import jobs_report, jobs_report_job, jobs_report_schedule
from imgpipe_assets.assets.themed import build_themed_assets
from imgpipe_assets.environments import executor_for, resources_for
from imgpipe_assets.jobs import mask_job, publish_job, render_job
from imgpipe_assets.retention import retention_job, retention_schedule
from imgpipe_assets.themes import load_themes
from imgpipe_resources.settings import Settings
from sensors.chain import chain_sensor
from sensors.failures import failure_sensor
from sensors.intake import intake_sensor
from sensors.jms_poll import build_jms_poll_sensor
from sensors.reconcile import build_reconcile_sensor


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything for one environment, from ``settings`` alone; the theme file fixes the
    theme partitions."""
    themed = build_themed_assets(load_themes(settings.themes_path))
    return dg.Definitions(
        assets=[mask, *themed, jobs_report],
        asset_checks=[quality_gates],
        jobs=[
            mask_job,
            render_job,
            publish_job,
            retention_job,
            jobs_report_job,
        ],
        schedules=[
            retention_schedule(settings.cleanup_days, settings.cleanup_composites),
            jobs_report_schedule,
        ],
        sensors=[
            intake_sensor,
            chain_sensor,
            failure_sensor,
            build_jms_poll_sensor(settings.jms.poll_interval_s, settings.max_images_per_sku),
            build_reconcile_sensor(settings.reconcile_after_s, settings.reconcile_attempts),
        ],
        resources=resources_for(settings),
        executor=executor_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
