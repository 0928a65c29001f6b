"""The ``mask`` asset: one cut-out per source image, shared by every theme."""

from collections.abc import Iterator

import dagster as dg

from imgpipe_assets.assets.batch import Stage, materialize_partitions
from imgpipe_assets.assets.checks import check_runs_as_a_step, gate_evaluation
from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.pipeline import work_size
from imgpipe_assets.partitions import image_partitions
from imgpipe_assets.stages.cutout import CutoutStage
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.publishing import Publisher
from imgpipe_resources.segmentation import SegmentationProvider
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary


@dg.asset(
    partitions_def=image_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="imgpipe",
    kinds={"python", "onnx"},
    code_version="1",
    # Remote models are rate-limited and paid: `dagster instance concurrency set replicate N`
    # caps how many mask steps run at once across all runs.
    pool="replicate",
    # Each partition records its own materialisation (materialize_partitions).
    output_required=False,
)
def mask(
    context: dg.AssetExecutionContext,
    db: JobsDatabase,
    storage: ObjectStore,
    segmenter: SegmentationProvider,
    themes: ThemeLibrary,
    fetcher: ImageFetcher,
    publisher: Publisher,
) -> Iterator[dg.MaterializeResult]:
    """Cut-out of each source photo: the product's own pixels with a soft alpha (RGBA PNG).

    Cropped to the product and sized for the largest theme. On a plain studio backdrop the
    backdrop key makes it at that resolution (holes opened, chains kept, shadows left
    out); elsewhere the model's alpha is refined against the photo's own edges. Either way
    the boundary colour is the product's, not the old backdrop's; the photo's measurements
    ride along in the PNG. Photos announced by URL
    are downloaded here (never in the sensor), checked against their sha256 and kept at
    ``originals/{sku}/{sha256}.{ext}``. Content-addressed at ``masks/{sha256}.png``: a photo
    is cut out once, whatever its SKU or theme, and a re-run finds the stored cut-out instead
    of paying again. With a shop to publish to, a SKU the shop does not have fails here
    (``SKU_NOT_FOUND``) before the photo is downloaded or cut out. Quality gates (coverage,
    a product cut off by the frame, source resolution, a shattered or hole-riddled mask)
    stop an image here, before any composite, with the gate named on its jobs rows; a
    doubtful cut-out (borderline values, the model and the key disagreeing, a see-through
    haze) is rendered but held for review. Moves the image's jobs to SEGMENTING.
    """
    theme_list = themes.all()
    # Run as its own step (one image from the UI), the check grades the stored cut-out;
    # otherwise each image's evaluation is recorded here.
    check_selected = check_runs_as_a_step(context)

    def graded(key: str, verdicts: list[gates.Verdict]) -> None:
        if not check_selected:
            context.log_event(gate_evaluation(key, verdicts))

    stage = CutoutStage(
        db,
        storage,
        segmenter,
        fetcher,
        publisher,
        list(theme_list),
        work_size(theme_list.values()),
        context.run_id,
        graded,
    )
    yield from materialize_partitions(
        context,
        [Stage(context.asset_key, stage)],
        lambda key, code, message: db.fail(key, None, code, message),
        workers=segmenter.concurrency,
    )
