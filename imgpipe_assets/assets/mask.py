"""The ``mask`` asset: one cut-out per source image, shared by every theme."""

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import dagster as dg

from imgpipe_assets.assets.batch import Stage, materialize_partitions, preview
from imgpipe_assets.assets.checks import check_runs_as_a_step, gate_evaluation
from imgpipe_assets.assets.sources import (
    image_ref,
    record_image_failure,
    source_bytes,
)
from imgpipe_assets.errors import QualityGateFailed, ShopifyUnavailable
from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.encode import thumbnail_jpeg
from imgpipe_assets.imaging.pipeline import load_cutout, on_grey_reduced, work_size
from imgpipe_assets.partitions import image_partitions
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import ensure_jobs, enter_stage
from imgpipe_resources.db.models import JobStatus
from imgpipe_resources.db.predictions import Ledger
from imgpipe_resources.db.shopify_map import product_for
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.keys import mask_key
from imgpipe_resources.publishing import Publisher
from imgpipe_resources.segmentation import CutoutRequest, SegmentationProvider
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
    theme_names = list(theme_list)
    work_px = work_size(theme_list.values())
    ledger = Ledger(db.url)
    # Run as its own step (one image from the UI), the check grades the stored cut-out;
    # otherwise each image's evaluation is recorded here.
    check_selected = check_runs_as_a_step(context)

    def shop_has(sku: str) -> None:
        """Raise ``SKU_NOT_FOUND`` (or ``SKU_AMBIGUOUS``) for a SKU the shop lacks; an
        unreachable shop is not a reason to stop (publishing retries later)."""
        try:
            product_for(db.url, publisher, sku)
        except ShopifyUnavailable as exc:
            context.log.warning(f"could not look {sku} up in the shop yet: {exc.message}")

    def work(key: str) -> dict[str, Any]:
        ref, _payload = image_ref(db, key)
        with db.session() as session:
            for job in ensure_jobs(session, ref, theme_names):
                enter_stage(job, JobStatus.SEGMENTING)
                job.dagster_run_id = context.run_id
        mkey = mask_key(ref.sha256)
        if not storage.exists(mkey):
            # Before anything is downloaded or paid for: the shop must have the product.
            shop_has(ref.sku)
        data, orig_key = source_bytes(storage, ref, fetcher)
        started = time.perf_counter()
        png = storage.get(mkey) if storage.exists(mkey) else b""
        stored_cut = load_cutout(png) if png else None
        if stored_cut is not None:
            # Paid for once: a re-run, or the same photo under another SKU, reuses it.
            cut, cached, size, cost, prediction = stored_cut, True, len(png), 0.0, None
            model = f"stored ({cut.model})"
        else:
            request = CutoutRequest(
                ref.sku, ref.sha256, storage.public_url(orig_key), ledger, work_px
            )
            cut = segmenter.cut_out(data, request)
            stored = storage.put(mkey, cut.png(), "image/png")
            if cut.prediction_id:
                ledger.stored(cut.prediction_id, mkey)
            cached, size, cost, prediction = (
                stored.cached,
                stored.size,
                cut.cost_usd,
                cut.prediction_id,
            )
            model = cut.model
        verdicts = gates.grade(cut.stats)
        if not check_selected:
            context.log_event(gate_evaluation(key, verdicts))
        with db.session() as session:
            jobs = ensure_jobs(session, ref, theme_names)
            for job in jobs:
                job.mask_key = mkey
                job.original_key = orig_key
                # The image's one cut-out is shared by its themes: so is its cost.
                job.cost_usd += Decimal(str(round(cost / len(jobs), 6)))
        stopped = gates.blocking(verdicts)
        if stopped:
            # The cut-out stays stored (it was paid for); the image goes no further.
            raise QualityGateFailed(
                "; ".join(f"{v.gate}: {v.reason}" for v in stopped)
                + f" (cut-out kept at {mkey} for inspection)"
            )
        doubts = [f"{v.gate}: {v.reason}" for v in gates.doubtful(verdicts)]
        return {
            "storage_key": mkey,
            "uri": dg.MetadataValue.url(storage.uri(mkey)),
            "size_bytes": size,
            "status": "cached" if cached else "created",
            "sku": ref.sku,
            "sha256": ref.sha256,
            "width": cut.width,
            "height": cut.height,
            "cutout_size": f"{cut.rgb.shape[1]}x{cut.rgb.shape[0]}",
            "mask_coverage": round(cut.coverage, 4),
            "subject_bbox": dg.MetadataValue.json(list(cut.crop)),
            "touches_edge": cut.touches_edge,
            "model": model,
            "provider": type(segmenter).__name__,
            "prediction_id": prediction or "",
            "cost_usd": round(cost, 6),
            "segment_seconds": round(time.perf_counter() - started, 3),
            "preview": preview(thumbnail_jpeg(on_grey_reduced(cut.rgb, cut.alpha, 256)), "cut-out"),
            "quality_gates": dg.MetadataValue.json(
                {v.gate: {"outcome": v.outcome, "value": v.value} for v in verdicts}
            ),
            # Doubtful gates hold every composite of the image for a person (AWAITING_REVIEW).
            "review_reasons": "; ".join(doubts) or "none",
            "backdrop": (
                f"plain: keyed, {cut.stats.holes_opened} holes opened, shadow "
                f"{cut.stats.shadow_share:.1%} of the crop left out"
                if cut.stats.keyed
                else "not plain: the model's cut-out"
            ),
        }

    yield from materialize_partitions(
        context,
        [Stage(context.asset_key, work)],
        lambda key, code, msg: record_image_failure(db, key, code, msg),
        workers=segmenter.concurrency,
    )
