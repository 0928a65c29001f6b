"""The cut-out stage: one photo's product on transparency, shared by every theme."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from imgpipe_assets.errors import QualityGateFailed, ShopifyUnavailable
from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.encode import thumbnail_jpeg
from imgpipe_assets.imaging.pipeline import load_cutout, on_grey_reduced
from imgpipe_assets.stages.outcome import Outcome
from imgpipe_assets.stages.sources import source_bytes
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.models import JobStatus
from imgpipe_resources.db.predictions import Ledger
from imgpipe_resources.db.shopify_map import product_for
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.keys import mask_key
from imgpipe_resources.publishing import Publisher
from imgpipe_resources.segmentation import CutoutRequest, SegmentationProvider
from imgpipe_resources.storage import ObjectStore

Graded = Callable[[str, list[gates.Verdict]], None]


@dataclass(frozen=True)
class CutoutStage:
    """Cut one image partition out: fetch or read its original, segment it once (a stored
    cut-out is reused, never paid for again), grade it, record it on the image's jobs.

    ``on_graded(key, verdicts)`` hears every image's gate verdicts, blocked ones included."""

    db: JobsDatabase
    storage: ObjectStore
    segmenter: SegmentationProvider
    fetcher: ImageFetcher
    publisher: Publisher
    themes: Sequence[str]
    work_px: int
    run_id: str
    on_graded: Graded = lambda _key, _verdicts: None

    def __call__(self, key: str) -> Outcome:
        ref, _payload = self.db.image(key)
        self.db.enter(ref, self.themes, JobStatus.SEGMENTING, self.run_id)
        mkey = mask_key(ref.sha256)
        warnings = []
        if not self.storage.exists(mkey):
            # Before anything is downloaded or paid for: the shop must have the product.
            warnings += self._shop_has(ref.sku)
        data, orig_key = source_bytes(self.storage, ref, self.fetcher)
        started = time.perf_counter()
        png = self.storage.get(mkey) if self.storage.exists(mkey) else b""
        stored_cut = load_cutout(png) if png else None
        if stored_cut is not None:
            # Paid for once: a re-run, or the same photo under another SKU, reuses it.
            cut, cached, size, cost, prediction = stored_cut, True, len(png), 0.0, None
            model = f"stored ({cut.model})"
        else:
            ledger = Ledger(self.db.url)
            request = CutoutRequest(
                ref.sku, ref.sha256, self.storage.public_url(orig_key), ledger, self.work_px
            )
            cut = self.segmenter.cut_out(data, request)
            stored = self.storage.put(mkey, cut.png(), "image/png")
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
        self.on_graded(key, verdicts)
        self.db.record_cutout(key, mkey, orig_key, cost)
        stopped = gates.blocking(verdicts)
        if stopped:
            # The cut-out stays stored (it was paid for); the image goes no further.
            raise QualityGateFailed(
                "; ".join(f"{v.gate}: {v.reason}" for v in stopped)
                + f" (cut-out kept at {mkey} for inspection)"
            )
        doubts = [f"{v.gate}: {v.reason}" for v in gates.doubtful(verdicts)]
        return Outcome(
            status="cached" if cached else "created",
            storage_key=mkey,
            uri=self.storage.uri(mkey),
            cost_usd=round(cost, 6),
            preview_jpeg=thumbnail_jpeg(on_grey_reduced(cut.rgb, cut.alpha, 256)),
            preview_alt="cut-out",
            warnings=warnings,
            facts={
                "size_bytes": size,
                "sku": ref.sku,
                "sha256": ref.sha256,
                "width": cut.width,
                "height": cut.height,
                "cutout_size": f"{cut.rgb.shape[1]}x{cut.rgb.shape[0]}",
                "mask_coverage": round(cut.coverage, 4),
                "subject_bbox": list(cut.crop),
                "touches_edge": cut.touches_edge,
                "model": model,
                "provider": type(self.segmenter).__name__,
                "prediction_id": prediction or "",
                "segment_seconds": round(time.perf_counter() - started, 3),
                "quality_gates": {
                    v.gate: {"outcome": v.outcome, "value": v.value} for v in verdicts
                },
                # Doubtful gates hold every composite of the image for a person.
                "review_reasons": "; ".join(doubts) or "none",
                "backdrop": (
                    f"plain: keyed, {cut.stats.holes_opened} holes opened, shadow "
                    f"{cut.stats.shadow_share:.1%} of the crop left out"
                    if cut.stats.keyed
                    else "not plain: the model's cut-out"
                ),
            },
        )

    def _shop_has(self, sku: str) -> list[str]:
        """Raise ``SKU_NOT_FOUND`` (or ``SKU_AMBIGUOUS``) for a SKU the shop lacks; an
        unreachable shop is a warning, not a reason to stop (publishing retries later)."""
        try:
            product_for(self.db.url, self.publisher, sku)
        except ShopifyUnavailable as exc:
            return [f"could not look {sku} up in the shop yet: {exc.message}"]
        return []
