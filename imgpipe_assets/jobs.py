"""The runs sensors launch. Partitions are taken from the selected assets when resolved."""

import dagster as dg

MASK_JOB = "mask_job"
RENDER_JOB = "render_job"
PUBLISH_JOB = "publish_job"

# Steps of one run share a process: a run's cost is its work, not one process per step.
mask_job = dg.define_asset_job(
    MASK_JOB,
    # The quality_gates check is recorded per image by the mask step itself: a range run
    # has no per-partition check step.
    selection=dg.AssetSelection.assets("mask").without_checks(),
    executor_def=dg.in_process_executor,
    description="Cut out new photos (one run per intake batch).",
)
render_job = dg.define_asset_job(
    RENDER_JOB,
    selection=["backgrounds", "composite"],
    executor_def=dg.in_process_executor,
    description="Backgrounds and composites of images in every theme.",
)
publish_job = dg.define_asset_job(
    PUBLISH_JOB,
    selection=["shopify_media"],
    executor_def=dg.in_process_executor,
    description="Attach composites to their Shopify products.",
)
