"""The runs sensors launch. Partitions are taken from the selected assets when resolved.

The executor is the code location's (``IMGPIPE_EXECUTOR``): in-process by default, so a
run's steps share one process and a run costs its work, not a process per step; Celery
workers or Kubernetes pods where one machine is not enough.
"""

import dagster as dg

MASK_JOB = "mask_job"
RENDER_JOB = "render_job"
PUBLISH_JOB = "publish_job"
# A run in any of these states is still going (or about to): its partitions are covered.
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# Every run carries its stage, so the instance can cap runs per stage
# (concurrency.runs.tag_concurrency_limits in dagster.yaml).
STAGE_TAG = "imgpipe/stage"

mask_job = dg.define_asset_job(
    MASK_JOB,
    # The quality_gates check is recorded per image by the mask step itself: a range run
    # has no per-partition check step.
    selection=dg.AssetSelection.assets("mask").without_checks(),
    description="Cut out new photos (one run per intake batch).",
    tags={STAGE_TAG: "mask"},
)
render_job = dg.define_asset_job(
    RENDER_JOB,
    selection=["backgrounds", "composite", "shopify_media"],
    description="Backgrounds and composites of images in every theme, and the publication "
    "of those whose theme publishes automatically (one run per intake batch).",
    tags={STAGE_TAG: "render"},
)
publish_job = dg.define_asset_job(
    PUBLISH_JOB,
    selection=["shopify_media"],
    description="Attach composites to their Shopify products: a person's approval, or the "
    "chain finishing publication (tagged imgpipe/publish=auto: composites waiting for "
    "review are left alone).",
    tags={STAGE_TAG: "publish"},
)
