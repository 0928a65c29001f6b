"""imgpipe's code location: assets, jobs, sensors and the resources of the environment."""

from __future__ import annotations

import dagster as dg

from imgpipe_assets.assets.mask import mask
from imgpipe_assets.assets.themed import build_themed_assets
from imgpipe_assets.environments import resources_for
from imgpipe_assets.partitions import image_partitions, image_theme_partitions
from imgpipe_assets.themes import load_themes
from imgpipe_resources.settings import Settings
from sensors.chain import PUBLISH_JOB, RENDER_JOB, chain_sensor
from sensors.intake import MASK_JOB, intake_sensor


def build_definitions(settings: Settings) -> dg.Definitions:
    """Everything for one environment; the theme file fixes the theme partitions."""
    theme_names = list(load_themes(settings.themes_path))
    backgrounds, composite, shopify_media = build_themed_assets(theme_names)
    per_theme = image_theme_partitions(theme_names)
    # Steps of one run share a process: a run's cost is its work, not three process starts.
    in_process = dg.in_process_executor
    jobs = [
        dg.define_asset_job(MASK_JOB, selection=[mask], partitions_def=image_partitions,
                            executor_def=in_process,
                            description="Cut out new photos (one run per intake batch)."),
        dg.define_asset_job(RENDER_JOB, selection=[backgrounds, composite],
                            partitions_def=per_theme, executor_def=in_process,
                            description="Backgrounds and composites of an image in every theme."),
        dg.define_asset_job(PUBLISH_JOB, selection=[shopify_media], partitions_def=per_theme,
                            executor_def=in_process,
                            description="Attach composites to their Shopify products."),
    ]
    return dg.Definitions(
        assets=[mask, backgrounds, composite, shopify_media],
        jobs=jobs,
        sensors=[intake_sensor, chain_sensor],
        resources=resources_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
