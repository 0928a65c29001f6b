"""The background and composite stages: each image x theme partition's backdrop, then the
product on it."""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from PIL import Image

from imgpipe_assets.errors import ChannelRuleBroken, SourceMissing
from imgpipe_assets.imaging import channels, gates, pipeline
from imgpipe_assets.imaging.compose import framed_cutout, subject
from imgpipe_assets.imaging.contrast import low_contrast_reason, outline_contrast
from imgpipe_assets.imaging.encode import EXTENSIONS, thumbnail_jpeg
from imgpipe_assets.imaging.fidelity import product_fidelity
from imgpipe_assets.imaging.pipeline import Cutout
from imgpipe_assets.partitions import split_multi_key
from imgpipe_assets.stages.outcome import Outcome
from imgpipe_assets.stages.sources import decode_plain, stored_cutout
from imgpipe_assets.themes import Theme
from imgpipe_resources.backgrounds import BackgroundGenerator, GenerationRequest
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.models import Job, JobStatus
from imgpipe_resources.db.predictions import Ledger
from imgpipe_resources.keys import background_key, composite_key, cutout_key
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary


def enter(db: JobsDatabase, key: str, stage: JobStatus, run_id: str) -> Job:
    """Move an image x theme partition's job into ``stage``; the job as it now is."""
    image, theme = split_multi_key(key)
    ref, _ = db.image(image)
    (job,) = db.enter(ref, [theme], stage, run_id)
    return job


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


@dataclass(frozen=True)
class BackgroundStage:
    """The theme's background for one image x theme partition. Procedural themes render
    once per theme version and reuse it; generative themes have a model paint a scene
    around the framed cut-out, once per image and theme version."""

    db: JobsDatabase
    storage: ObjectStore
    themes: ThemeLibrary
    generator: BackgroundGenerator
    run_id: str

    def __call__(self, key: str) -> Outcome:
        _image, theme_name = split_multi_key(key)
        theme = self.themes.get(theme_name)
        job = enter(self.db, key, JobStatus.BG_GENERATING, self.run_id)
        if theme.generative:
            return self._generate(job, theme, key)
        bkey = background_key(theme.name, theme.background_fingerprint())
        facts: dict[str, Any] = {
            "theme": theme.name,
            "style": str(theme.background.get("style")),
            "canvas": f"{theme.canvas[0]}x{theme.canvas[1]}",
            "provider": "procedural",
        }
        thumb = None
        if self.storage.exists(bkey):
            cached = True
        else:
            image = pipeline.background(theme)
            stored = self.storage.put(bkey, _png(image), "image/png")
            cached, thumb = stored.cached, thumbnail_jpeg(image, 192)
            facts["size_bytes"] = stored.size
        self.db.record(job.partition_key, theme.name, background_key=bkey)
        return Outcome(
            status="cached" if cached else "created",
            storage_key=bkey,
            uri=self.storage.uri(bkey),
            preview_jpeg=thumb,
            preview_alt=theme.name,
            facts=facts,
        )

    def _generate(self, job: Job, theme: Theme, key: str) -> Outcome:
        fingerprint = theme.background_fingerprint()
        bkey = background_key(theme.name, f"{job.img_sha256}-{fingerprint}")
        cost, prediction, model = 0.0, "", "stored"
        if not self.storage.exists(bkey):
            if job.original_key is None or job.mask_key is None:
                raise SourceMissing(f"{key} has no recorded original or mask")
            cut = stored_cutout(self.storage, job.mask_key)
            framed = framed_cutout(cut.rgb, cut.alpha, theme.frame)
            fkey = cutout_key(job.img_sha256, f"{theme.name}-{fingerprint}")
            self.storage.put(fkey, framed, "image/png")
            ledger = Ledger(self.db.url)
            made = self.generator.generate(
                GenerationRequest(
                    job.sku,
                    job.img_sha256,
                    theme.name,
                    fingerprint,
                    framed,
                    self.storage.public_url(fkey),
                    theme.background,
                    ledger,
                )
            )
            backdrop = decode_plain(made.image)
            if backdrop.shape[:2] != (theme.canvas[1], theme.canvas[0]):
                backdrop = np.asarray(
                    Image.fromarray(backdrop).resize(theme.canvas, Image.Resampling.LANCZOS)
                )
            self.storage.put(bkey, _png(backdrop), "image/png")
            ledger.stored(made.prediction_id, bkey)
            cost, prediction, model = made.cost_usd, made.prediction_id, made.model
        self.db.record(
            job.partition_key,
            theme.name,
            background_key=bkey,
            cost_usd=job.cost_usd + Decimal(str(cost)),
        )
        return Outcome(
            status="cached" if model == "stored" else "created",
            storage_key=bkey,
            uri=self.storage.uri(bkey),
            cost_usd=round(cost, 6),
            facts={
                "theme": theme.name,
                "style": "generative",
                "canvas": f"{theme.canvas[0]}x{theme.canvas[1]}",
                "provider": type(self.generator).__name__,
                "model": model,
                "prediction_id": prediction,
            },
        )


def review_reason(
    cut: Cutout, theme: Theme, contrast: float, enlarged: str | None = None
) -> str | None:
    """Why this composite must wait for a person, if it must: the cut-out's doubtful
    gates first (they hold every theme), then a product hard to see on this theme's
    background or enlarged past the theme's ``max_upscale``, then the theme's own
    ``publish: review``."""
    doubts = gates.doubtful(gates.grade(cut.stats))
    if doubts:
        return "; ".join(f"{v.gate}: {v.reason}" for v in doubts)
    hard_to_see = low_contrast_reason(contrast)
    if hard_to_see:
        return hard_to_see
    if enlarged:
        return enlarged
    if theme.publish != "auto":
        return f"theme {theme.name} publishes after review"
    return None


@dataclass(frozen=True)
class CompositeStage:
    """The product framed on one image x theme partition's background with a soft contact
    shadow, stored in the theme's format (and its smaller copies); held for review when
    the theme or a doubtful cut-out says so, or when the product's outline barely differs
    from the background (the contrast gate). Deterministic: unchanged inputs give
    identical bytes, reported as cached."""

    db: JobsDatabase
    storage: ObjectStore
    themes: ThemeLibrary
    run_id: str
    # The image being rendered (keys are image-major: its themes follow each other), and
    # each theme's background.
    _cutouts: _Recent = field(default_factory=lambda: _Recent(2), init=False)
    _backdrops: _Recent = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_backdrops", _Recent(len(self.themes.all()) + 1))

    def __call__(self, key: str) -> Outcome:
        image_key, theme_name = split_multi_key(key)
        theme = self.themes.get(theme_name)
        job = enter(self.db, key, JobStatus.COMPOSITING, self.run_id)
        if job.mask_key is None or job.background_key is None:
            raise SourceMissing(f"{key} has no recorded cut-out or background")
        started = time.perf_counter()
        mkey, bkey = job.mask_key, job.background_key
        cut, prepared = self._cutouts.get(image_key, lambda: self._load(mkey))
        backdrop = self._backdrops.get(bkey, lambda: decode_plain(self.storage.get(bkey)))
        size = pipeline.enlargement(cut, theme)
        rendered = pipeline.render(cut.rgb, cut.alpha, backdrop, theme, prepared, size.max_scale)
        ext = EXTENSIONS[theme.output_format]
        ckey = composite_key(job.sku, job.img_sha256, theme.name, ext)
        stored = self.storage.put(ckey, rendered.data, rendered.content_type)
        copies = {}
        for side, data in rendered.variants.items():
            vkey = composite_key(job.sku, job.img_sha256, theme.name, ext, size=side)
            self.storage.put(vkey, data, rendered.content_type)
            copies[str(side)] = vkey
        contrast = outline_contrast(cut.rgb, cut.alpha, backdrop)
        reason = review_reason(cut, theme, contrast, size.review_reason)
        self.db.record_composite(image_key, theme.name, ckey, reason)
        shown = channels.Shown.of(rendered.data)
        findings = channels.check(shown, rendered.layout, theme.rules) if theme.rules else []
        broken = channels.failures(findings)
        if broken:
            hint = f" ({size})" if size.too_much and any(f.rule == "fill" for f in broken) else ""
            raise ChannelRuleBroken(
                f"{theme.name} composite {ckey} breaks " + "; ".join(str(f) for f in broken) + hint
            )
        fidelity = product_fidelity(shown.pixels, rendered.layout)
        return Outcome(
            status="cached" if stored.cached else "created",
            storage_key=ckey,
            uri=stored.uri,
            preview_jpeg=thumbnail_jpeg(rendered.image, 256),
            preview_alt=f"{job.sku} {theme.name}",
            facts={
                "size_bytes": stored.size,
                "sku": job.sku,
                "theme": theme.name,
                "width": theme.canvas[0],
                "height": theme.canvas[1],
                "format": theme.output_format,
                "smaller_copies": copies,
                "render_seconds": round(time.perf_counter() - started, 3),
                "outline_contrast": round(contrast, 1),
                "colour_fidelity": str(fidelity) if fidelity else "no solid interior",
                **(
                    {"delta_e_mean": round(fidelity.mean, 3), "delta_e_p95": round(fidelity.p95, 3)}
                    if fidelity
                    else {}
                ),
                "enlargement": str(size),
                **({"channel_rules": "; ".join(f"{f} ✓" for f in findings)} if findings else {}),
                "review": reason or "none: publishes automatically",
            },
        )

    def _load(self, mkey: str) -> tuple[Cutout, Image.Image]:
        cut = stored_cutout(self.storage, mkey)
        return cut, subject(cut.rgb, cut.alpha)
