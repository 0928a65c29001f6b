"""The assets partitioned by image x theme: ``backgrounds``, ``composite``, ``shopify_media``.

One op (``render``, a multi-asset that can be subset) so each image x theme makes its
background, then its composite, then publishes it, and a failed stage stops only that
partition's later stages. Built by a factory because the theme dimension comes from the
theme file. The work is in ``imgpipe_assets.stages``.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from imgpipe_assets.assets.batch import OnError, Stage, materialize_partitions
from imgpipe_assets.assets.mask import mask
from imgpipe_assets.partitions import IMAGE, image_theme_partitions, split_multi_key
from imgpipe_assets.stages.publish import PublishStage
from imgpipe_assets.stages.render import BackgroundStage, CompositeStage
from imgpipe_assets.themes import Theme
from imgpipe_resources.backgrounds import BackgroundGenerator
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.publishing import Publisher
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary

BACKGROUNDS = dg.AssetKey("backgrounds")
COMPOSITE = dg.AssetKey("composite")
SHOPIFY_MEDIA = dg.AssetKey("shopify_media")
# On a run of shopify_media alone: the chain's automatic publishing, not a person's approval.
PUBLISH_TAG = "imgpipe/publish"

BACKGROUNDS_DESCRIPTION = """The theme's background for each image, at the theme's canvas size.

Procedural themes render the same background for every image, so it is stored once per
theme version at ``backgrounds/{theme}/{fingerprint}.png`` and reused. Generative themes
have a model paint a scene around the framed cut-out, once per image and theme version, at
``backgrounds/{theme}/{sha256}-{fingerprint}.png``. Moves the job to BG_GENERATING."""

COMPOSITE_DESCRIPTION = """The product framed on the theme's background with a soft contact
shadow.

Stored at ``composites/{sku}/{sha256}/{theme}.{ext}`` in the theme's output format,
sRGB-tagged. Rendering is deterministic: unchanged inputs give identical bytes, reported as
cached. Moves the job to COMPOSITING, or to AWAITING_REVIEW with the reason when a person
must see it first (a theme that publishes after review, or a doubtful cut-out)."""


SHOPIFY_MEDIA_DESCRIPTION = """The composite attached to the Shopify product with the image's
SKU, exactly once.

The media's filename is deterministic per (sku, sha256, theme), so a re-run finds the
attachment instead of making a second. Rendered in the same run as its composite, it is
published at once when its theme says ``publish: auto`` and the cut-out was not doubtful;
a composite in AWAITING_REVIEW is published when a person materialises ``shopify_media``
for it on its own (the approval). Moves the job to DONE."""


def _fail_job(db: JobsDatabase) -> OnError:
    """What an image x theme partition's named error does: fail its jobs row."""

    def fail(key: str, code: str, message: str) -> None:
        image, theme = split_multi_key(key)
        db.fail(image, theme, code, message)

    return fail


def build_themed_assets(theme_file: Mapping[str, Theme]) -> list[dg.AssetsDefinition]:
    """``backgrounds``, ``composite`` and ``shopify_media`` for the themes of the theme file:
    one op, so each image x theme makes its background, then its composite, then publishes
    it (a failed stage stops only its own partition's later stages), and the chain's render
    run ends with the shop holding what automatic themes made."""
    partitions = image_theme_partitions(list(theme_file))
    from_mask = dg.AssetDep(
        mask,
        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=IMAGE),
    )
    generative = any(t.generative for t in theme_file.values())
    common: dict[str, Any] = {"group_name": "imgpipe", "kinds": {"python"}, "code_version": "1"}

    @dg.multi_asset(
        name="render",
        specs=[
            dg.AssetSpec(
                BACKGROUNDS,
                deps=[from_mask],
                description=BACKGROUNDS_DESCRIPTION,
                skippable=True,  # each partition records its own materialisation
                **common,
            ),
            dg.AssetSpec(
                COMPOSITE,
                deps=[from_mask, BACKGROUNDS],
                description=COMPOSITE_DESCRIPTION,
                skippable=True,
                **common,
            ),
            dg.AssetSpec(
                SHOPIFY_MEDIA,
                deps=[COMPOSITE],
                description=SHOPIFY_MEDIA_DESCRIPTION,
                skippable=True,
                **{**common, "kinds": {"shopify"}},
            ),
        ],
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        can_subset=True,
        pool="replicate" if generative else None,  # generative themes call Replicate
    )
    def render(
        context: dg.AssetExecutionContext,
        db: JobsDatabase,
        storage: ObjectStore,
        themes: ThemeLibrary,
        generator: BackgroundGenerator,
        publisher: Publisher,
    ) -> Iterator[dg.MaterializeResult]:
        """Backgrounds, composites and their publication, for the run's image x theme
        partitions, each partition through its stages in order."""
        selected, run_id = context.selected_asset_keys, context.run_id
        stages: list[Stage] = []
        if BACKGROUNDS in selected:
            stages.append(
                Stage(BACKGROUNDS, BackgroundStage(db, storage, themes, generator, run_id))
            )
        if COMPOSITE in selected:
            stages.append(Stage(COMPOSITE, CompositeStage(db, storage, themes, run_id)))
        if SHOPIFY_MEDIA in selected:
            # Publishing what this run rendered, or finishing the chain's publishing, is
            # automatic; shopify_media on its own, by a person, is an approval.
            automatic = COMPOSITE in selected or context.run.tags.get(PUBLISH_TAG) == "auto"
            publish = PublishStage(db, storage, themes, publisher, run_id, automatic)
            stages.append(Stage(SHOPIFY_MEDIA, publish))
        # Scaling, blending and encoding run in C, off the GIL: two partitions at a time;
        # four where partitions wait on a generative model.
        workers = 4 if generative else 2
        yield from materialize_partitions(context, stages, _fail_job(db), workers=workers)

    return [render]
