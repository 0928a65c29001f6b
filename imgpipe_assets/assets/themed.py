"""The assets partitioned by image x theme: ``backgrounds``, ``composite``, ``shopify_media``.

Built by a factory because the theme dimension comes from the theme file.
"""

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image

from imgpipe_assets.assets.batch import Stage, materialize_partitions, preview
from imgpipe_assets.assets.mask import mask
from imgpipe_assets.assets.sources import decode_plain, image_ref, stored_cutout
from imgpipe_assets.errors import SourceMissing
from imgpipe_assets.imaging import gates, pipeline
from imgpipe_assets.imaging.compose import framed_cutout, subject
from imgpipe_assets.imaging.encode import CONTENT_TYPES, EXTENSIONS, thumbnail_jpeg
from imgpipe_assets.imaging.pipeline import Cutout
from imgpipe_assets.partitions import IMAGE, image_theme_partitions, split_multi_key
from imgpipe_assets.themes import Theme
from imgpipe_resources.backgrounds import BackgroundGenerator, GenerationRequest
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import (
    ensure_jobs,
    enter_stage,
    fail,
    finish,
    get_job,
    hold_for_review,
)
from imgpipe_resources.db.models import Job, JobStatus
from imgpipe_resources.db.predictions import Ledger
from imgpipe_resources.db.shopify_map import product_for
from imgpipe_resources.keys import background_key, composite_key, cutout_key
from imgpipe_resources.publishing import MediaRequest, Publisher
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary


def _enter(db: JobsDatabase, key: str, stage: JobStatus, run_id: str) -> Job:
    image, theme = split_multi_key(key)
    ref, _ = image_ref(db, image)
    with db.session() as session:
        (job,) = ensure_jobs(session, ref, [theme])
        enter_stage(job, stage)
        job.dagster_run_id = run_id
        return job


def _record(db: JobsDatabase, key: str, **fields: Any) -> Job:
    image, theme = split_multi_key(key)
    with db.session() as session:
        job = get_job(session, image, theme)
        if job is None:
            raise SourceMissing(f"no job for {key}")
        for name, value in fields.items():
            setattr(job, name, value)
        if fields.get("shopify_media_id"):
            finish(job)
        return job


def _fail(db: JobsDatabase, key: str, code: str, message: str) -> None:
    image, theme = split_multi_key(key)
    with db.session() as session:
        job = get_job(session, image, theme)
        if job is not None:
            fail(job, code, message)


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    # Level 1: backgrounds are intermediates read once per composite; speed beats size.
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class _Recent:
    """A tiny thread-safe memo of the last few values (decoded cut-outs, backgrounds), so a
    run over many images holds a bounded number of them."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = make()  # under the lock: two themes of one image decode it once
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
            return value


def publish_work(
    db: JobsDatabase,
    storage: ObjectStore,
    themes: ThemeLibrary,
    publisher: Publisher,
    run_id: str,
    automatic: bool,
) -> Callable[[str], dict[str, Any] | None]:
    """Publishing one image x theme partition: the ``shopify_media`` stage.

    ``automatic`` is the chain publishing what it has just rendered (or the reconciliation
    finishing that): a composite waiting in AWAITING_REVIEW (its theme publishes after
    review, or its cut-out was doubtful) is left for a person and nothing is recorded for it.
    A person publishing ``shopify_media`` on its own is the approval: it publishes what was
    selected."""

    def publish(key: str) -> dict[str, Any]:
        _image, theme_name = split_multi_key(key)
        theme = themes.get(theme_name)
        job = _enter(db, key, JobStatus.UPLOADING, run_id)
        if job.composite_key is None or not storage.exists(job.composite_key):
            raise SourceMissing(f"{key} has no stored composite")
        ref, payload = image_ref(db, job.partition_key)
        product = product_for(db.url, publisher, ref.sku)
        # The shop's own product title names the product best; 3JMS's is the fallback.
        title = str(product.title or payload.get("title") or ref.sku)
        ext = job.composite_key.rsplit(".", 1)[-1]
        public = storage.public_url(job.composite_key)
        request = MediaRequest(
            sku=ref.sku,
            sha256=ref.sha256,
            theme=theme.name,
            filename=f"imgpipe-{ref.sku}-{ref.sha256[:12]}-{theme.name}.{ext}",
            alt=theme.alt.format(title=title, sku=ref.sku),
            source_url=public,
            storage_key=job.composite_key,
            # Without a public URL (local storage) the client uploads the bytes itself.
            content=None if public else storage.get(job.composite_key),
            content_type=CONTENT_TYPES[theme.output_format],
        )
        media = publisher.publish(request, product)
        _record(
            db,
            key,
            shopify_product_id=media.product_id,
            shopify_variant_id=media.variant_id,
            shopify_media_id=media.media_id,
        )
        return {
            "sku": ref.sku,
            "theme": theme.name,
            "product_id": media.product_id,
            "media_id": media.media_id,
            "filename": request.filename,
            "alt": request.alt,
            "status": "created" if media.created else "already attached",
            "dry_run": media.dry_run,
            "record": media.record,
            "replaced": dg.MetadataValue.json(media.removed),
        }

    def work(key: str) -> dict[str, Any] | None:
        if automatic and key in held_for_review(db, [key]):
            return None
        return publish(key)

    return work


def record_failure(db: JobsDatabase) -> Callable[[str, str, str], None]:
    """What an image x theme partition's named error does: fail its jobs row."""
    return lambda key, code, message: _fail(db, key, code, message)


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


def background_work(
    run_id: str,
    db: JobsDatabase,
    storage: ObjectStore,
    themes: ThemeLibrary,
    generator: BackgroundGenerator,
) -> Callable[[str], dict[str, Any]]:
    """Making one image x theme partition's background: the ``backgrounds`` stage."""
    ledger = Ledger(db.url)

    def work(key: str) -> dict[str, Any]:
        _image, theme_name = split_multi_key(key)
        theme = themes.get(theme_name)
        job = _enter(db, key, JobStatus.BG_GENERATING, run_id)
        if theme.generative:
            return _generate(job, theme, key)
        bkey = background_key(theme.name, theme.background_fingerprint())
        if storage.exists(bkey):
            cached, size, thumb = True, None, None
        else:
            image = pipeline.background(theme)
            stored = storage.put(bkey, _png(image), "image/png")
            cached, size, thumb = stored.cached, stored.size, thumbnail_jpeg(image, 192)
        _record(db, key, background_key=bkey)
        metadata: dict[str, Any] = {
            "storage_key": bkey,
            "uri": dg.MetadataValue.url(storage.uri(bkey)),
            "status": "cached" if cached else "created",
            "theme": theme.name,
            "style": str(theme.background.get("style")),
            "canvas": f"{theme.canvas[0]}x{theme.canvas[1]}",
            "provider": "procedural",
            "cost_usd": 0.0,
        }
        if size is not None:
            metadata["size_bytes"] = size
        if thumb is not None:
            metadata["preview"] = preview(thumb, theme.name)
        return metadata

    def _generate(job: Job, theme: Theme, key: str) -> dict[str, Any]:
        fingerprint = theme.background_fingerprint()
        bkey = background_key(theme.name, f"{job.img_sha256}-{fingerprint}")
        cost, prediction, model = 0.0, "", "stored"
        if not storage.exists(bkey):
            if job.original_key is None or job.mask_key is None:
                raise SourceMissing(f"{key} has no recorded original or mask")
            cut = stored_cutout(storage, job.mask_key)
            framed = framed_cutout(cut.rgb, cut.alpha, theme.frame)
            fkey = cutout_key(job.img_sha256, f"{theme.name}-{fingerprint}")
            storage.put(fkey, framed, "image/png")
            made = generator.generate(
                GenerationRequest(
                    job.sku,
                    job.img_sha256,
                    theme.name,
                    fingerprint,
                    framed,
                    storage.public_url(fkey),
                    theme.background,
                    ledger,
                )
            )
            backdrop = decode_plain(made.image)
            if backdrop.shape[:2] != (theme.canvas[1], theme.canvas[0]):
                backdrop = np.asarray(
                    Image.fromarray(backdrop).resize(theme.canvas, Image.Resampling.LANCZOS)
                )
            storage.put(bkey, _png(backdrop), "image/png")
            ledger.stored(made.prediction_id, bkey)
            cost, prediction, model = made.cost_usd, made.prediction_id, made.model
        _record(db, key, background_key=bkey, cost_usd=job.cost_usd + Decimal(str(cost)))
        return {
            "storage_key": bkey,
            "uri": dg.MetadataValue.url(storage.uri(bkey)),
            "status": "cached" if model == "stored" else "created",
            "theme": theme.name,
            "style": "generative",
            "canvas": f"{theme.canvas[0]}x{theme.canvas[1]}",
            "provider": type(generator).__name__,
            "model": model,
            "prediction_id": prediction,
            "cost_usd": round(cost, 6),
        }

    return work


SHOPIFY_MEDIA_DESCRIPTION = """The composite attached to the Shopify product with the image's
SKU, exactly once.

The media's filename is deterministic per (sku, sha256, theme), so a re-run finds the
attachment instead of making a second. Rendered in the same run as its composite, it is
published at once when its theme says ``publish: auto`` and the cut-out was not doubtful;
a composite in AWAITING_REVIEW is published when a person materialises ``shopify_media``
for it on its own (the approval). Moves the job to DONE."""


def composite_work(
    run_id: str, db: JobsDatabase, storage: ObjectStore, themes: ThemeLibrary
) -> Callable[[str], dict[str, Any]]:
    """Rendering one image x theme partition's composite: the ``composite`` stage."""
    cutouts = _Recent(2)  # the image being rendered (keys are image-major: themes follow)
    backdrops = _Recent(len(themes.all()) + 1)

    def load(job: Job) -> tuple[Cutout, Image.Image]:
        assert job.mask_key is not None
        cut = stored_cutout(storage, job.mask_key)
        return cut, subject(cut.rgb, cut.alpha)

    def work(key: str) -> dict[str, Any]:
        image_key, theme_name = split_multi_key(key)
        theme = themes.get(theme_name)
        job = _enter(db, key, JobStatus.COMPOSITING, run_id)
        if job.mask_key is None or job.background_key is None:
            raise SourceMissing(f"{key} has no recorded cut-out or background")
        started = time.perf_counter()
        cut, prepared = cutouts.get(image_key, lambda: load(job))
        bkey = job.background_key
        backdrop = backdrops.get(bkey, lambda: decode_plain(storage.get(bkey)))
        rendered = pipeline.render(cut.rgb, cut.alpha, backdrop, theme, prepared)
        ext = EXTENSIONS[theme.output_format]
        ckey = composite_key(job.sku, job.img_sha256, theme.name, ext)
        stored = storage.put(ckey, rendered.data, rendered.content_type)
        copies = {}
        for side, data in rendered.variants.items():
            vkey = composite_key(job.sku, job.img_sha256, theme.name, ext, size=side)
            storage.put(vkey, data, rendered.content_type)
            copies[str(side)] = vkey
        held = _hold_if_doubtful(db, key, ckey, cut, theme)
        return {
            "storage_key": ckey,
            "uri": dg.MetadataValue.url(stored.uri),
            "size_bytes": stored.size,
            "status": "cached" if stored.cached else "created",
            "sku": job.sku,
            "theme": theme.name,
            "width": theme.canvas[0],
            "height": theme.canvas[1],
            "format": theme.output_format,
            "smaller_copies": dg.MetadataValue.json(copies),
            "render_seconds": round(time.perf_counter() - started, 3),
            "cost_usd": 0.0,
            "preview": preview(thumbnail_jpeg(rendered.image, 256), f"{job.sku} {theme.name}"),
            "review": held or "none: publishes automatically",
        }

    return work


def review_reason(cut: Cutout, theme: Theme) -> str | None:
    """Why this composite must wait for a person, if it must: the cut-out's doubtful
    gates first (they hold every theme), then the theme's own ``publish: review``."""
    doubts = gates.doubtful(gates.grade(cut.stats))
    if doubts:
        return "; ".join(f"{v.gate}: {v.reason}" for v in doubts)
    if theme.publish != "auto":
        return f"theme {theme.name} publishes after review"
    return None


def _hold_if_doubtful(
    db: JobsDatabase, key: str, ckey: str, cut: Cutout, theme: Theme
) -> str | None:
    reason = review_reason(cut, theme)
    image, theme_name = split_multi_key(key)
    with db.session() as session:
        job = get_job(session, image, theme_name)
        if job is None:
            raise SourceMissing(f"no job for {key}")
        job.composite_key = ckey
        if reason:
            hold_for_review(job, reason)
        else:
            job.review_reason = None
    return reason


def held_for_review(db: JobsDatabase, keys: list[str]) -> set[str]:
    """The image x theme partitions among ``keys`` whose composite waits for a person."""
    with db.session() as session:
        held = set()
        for key in keys:
            image, theme = split_multi_key(key)
            job = get_job(session, image, theme)
            if job is not None and job.status == JobStatus.AWAITING_REVIEW.value:
                held.add(key)
        return held


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
        selected = context.selected_asset_keys
        stages: list[Stage] = []
        if BACKGROUNDS in selected:
            stages.append(
                Stage(BACKGROUNDS, background_work(context.run_id, db, storage, themes, generator))
            )
        if COMPOSITE in selected:
            stages.append(Stage(COMPOSITE, composite_work(context.run_id, db, storage, themes)))
        if SHOPIFY_MEDIA in selected:
            # Publishing what this run rendered, or finishing the chain's publishing, is
            # automatic; shopify_media on its own, by a person, is an approval.
            automatic = COMPOSITE in selected or context.run.tags.get(PUBLISH_TAG) == "auto"
            work = publish_work(db, storage, themes, publisher, context.run_id, automatic)
            stages.append(Stage(SHOPIFY_MEDIA, work))
        # Scaling, blending and encoding run in C, off the GIL: two partitions at a time;
        # four where partitions wait on a generative model.
        workers = 4 if generative else 2
        yield from materialize_partitions(context, stages, record_failure(db), workers=workers)

    return [render]
