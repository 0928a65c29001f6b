"""``auto_publish_job``: the composites of themes that publish automatically, many images per
run, each recorded as its own ``shopify_media`` materialisation.

A partition-range run (how ``shopify_media`` runs) must be contiguous, and with images x
themes in image-major order a range over several images would include the themes that wait
for a person's review. This op takes any set of partitions instead, so the chain sensor
publishes a whole block of images in one run rather than one run per image. Approving a
review theme is still done by materialising ``shopify_media`` in the UI.
"""

import dagster as dg
from pydantic import Field

from imgpipe_assets.assets.batch import Stage, materialize_partitions
from imgpipe_assets.assets.themed import held_for_review, publish_work, record_failure
from imgpipe_assets.jobs import STAGE_TAG
from imgpipe_assets.partitions import split_multi_key
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.publishing import Publisher
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary

AUTO_PUBLISH_JOB = "auto_publish_job"
SHOPIFY_MEDIA = dg.AssetKey("shopify_media")


class AutoPublishConfig(dg.Config):
    partitions: list[str] = Field(description="image|theme partition keys to publish")


@dg.op(
    pool="shopify",  # shares the cap on Shopify calls with the shopify_media asset
    tags={"kind": "shopify"},
)
def auto_publish(
    context: dg.OpExecutionContext,
    config: AutoPublishConfig,
    db: JobsDatabase,
    storage: ObjectStore,
    themes: ThemeLibrary,
    publisher: Publisher,
) -> None:
    """Attach each partition's composite to its Shopify product, exactly once, and record
    the partition as a shopify_media materialisation."""
    auto = {name for name, theme in themes.all().items() if theme.publish == "auto"}
    refused = [k for k in config.partitions if split_multi_key(k)[1] not in auto]
    if refused:
        # Never publish a review theme behind a person's back.
        raise dg.Failure(f"not auto-publishing themes: {', '.join(refused[:5])}")
    # A doubtful cut-out's composites wait for a person whatever their theme says.
    held = held_for_review(db, config.partitions)
    if held:
        context.log.info(f"held for review, not published: {len(held)} composites")
    keys = [k for k in config.partitions if k not in held]
    work = publish_work(db, storage, themes, publisher, context.run_id)
    stages = [Stage(SHOPIFY_MEDIA, work)]
    if keys:
        materialize_partitions(context, stages, record_failure(db), keys=keys)
    context.log.info(f"published {len(keys)} composites")


@dg.job(
    name=AUTO_PUBLISH_JOB,
    tags={STAGE_TAG: "publish"},
    description="Attach composites of auto-publishing themes to Shopify, a block of images "
    "per run; each becomes a shopify_media materialisation.",
)
def auto_publish_job() -> None:
    auto_publish()
