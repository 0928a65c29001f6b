"""The imaging core as three calls the assets (and the benchmarks) share.

cut_out:    source bytes -> cut-out (the product's pixels and soft alpha, cropped) + stats
background: theme -> background image
render:     cut-out + background + theme -> encoded composite

A cut-out is found on a small copy of the photo (the model sees 320 x 320 anyway), then
the photo is decoded only as large as the largest theme needs for the product's size
(JPEGs straight from the DCT at 1/2, 1/4 or 1/8) and cropped to the product. On a plain
studio backdrop the cut-out is then made at that resolution by the backdrop key
(``backdrop.key``: holes opened, thin parts kept, shadows left out, edges matted); anywhere
else the model's alpha is refined by the photo's own edges and its boundary colour
decontaminated. The full-resolution photo is never held in memory unless the product needs
every pixel of it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from PIL import Image, PngImagePlugin

from imgpipe_assets.imaging import background as bg
from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.backdrop import (
    PLAIN,
    Backdrop,
    KeyLimits,
    extent,
    fit_backdrop,
    key,
)
from imgpipe_assets.imaging.compose import Layout, composite, subject, subject_bbox
from imgpipe_assets.imaging.decode import MAX_PIXELS, Decoded, decode, reduction_for
from imgpipe_assets.imaging.encode import CONTENT_TYPES, encode
from imgpipe_assets.imaging.matting import decontaminate, refine_alpha, resize_float
from imgpipe_assets.imaging.segment import Segmenter, recover_plain_backdrop_parts
from imgpipe_assets.themes import Theme

WORK_PX = 2048  # the product's long side is kept up to this (the largest canvas, by default)
PROBE_PX = 512  # the long side the segmentation model and the gates look at
MARGIN = 0.02  # crop margin around the product, as a fraction of the frame's long side


@dataclass(frozen=True)
class Cutout:
    """The product cropped from its photo: straight colour and alpha, at working size."""

    rgb: np.ndarray  # h x w x 3 uint8, boundary colour decontaminated
    alpha: np.ndarray  # h x w float32 [0, 1]
    width: int  # the upright source photo
    height: int
    crop: tuple[int, int, int, int]  # top, left, bottom, right of the crop, source pixels
    stats: gates.Stats
    model: str
    cost_usd: float = 0.0
    prediction_id: str | None = None

    @property
    def coverage(self) -> float:
        return self.stats.coverage

    @property
    def touches_edge(self) -> bool:
        return self.stats.edge_contact > 0

    def png(self) -> bytes:
        """RGBA PNG of the cut-out, its measurements in an ``imgpipe`` text chunk."""
        rgba = np.dstack([self.rgb, np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
        info = PngImagePlugin.PngInfo()
        meta = {
            "frame": [self.width, self.height],
            "crop": list(self.crop),
            "stats": asdict(self.stats),
            "model": self.model,
        }
        info.add_text("imgpipe", json.dumps(meta))
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1, pnginfo=info)
        return buf.getvalue()

    def tight_png(self) -> bytes:
        """The RGBA cut-out cropped to the box of its non-zero (8-bit) alpha, no metadata."""
        a8 = np.clip(self.alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rows = np.flatnonzero(a8.any(axis=1))
        cols = np.flatnonzero(a8.any(axis=0))
        if rows.size:
            box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            rgba = np.dstack([self.rgb[box], a8[box]])
        else:
            rgba = np.dstack([self.rgb[:1, :1], a8[:1, :1]])
        buf = io.BytesIO()
        Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
        return buf.getvalue()


def work_size(themes: Iterable[Theme], floor: int = 1024) -> int:
    """The long side a cut-out needs so that no theme has to enlarge it: the largest box a
    product is fitted into, over all themes."""
    sides = [
        max(t.canvas[0] * (1 - 2 * t.padding), t.canvas[1] * (1 - 2 * t.padding)) for t in themes
    ]
    return max([floor, *(int(np.ceil(v)) for v in sides)])


def load_cutout(png: bytes) -> Cutout | None:
    """A stored cut-out, or None when the bytes are not one (an older mask format)."""
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        raw = im.info.get("imgpipe") if im.mode == "RGBA" else None
        if not raw:
            return None
        meta = json.loads(raw)
        arr = np.asarray(im)
    return Cutout(
        rgb=np.ascontiguousarray(arr[..., :3]),
        alpha=arr[..., 3].astype(np.float32) / 255.0,
        width=int(meta["frame"][0]),
        height=int(meta["frame"][1]),
        crop=(*(int(v) for v in meta["crop"]),),  # type: ignore[arg-type]
        stats=gates.Stats(**meta["stats"]),
        model=str(meta.get("model", "stored")),
    )


def _fit(rgb: np.ndarray, long_side: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= long_side:
        return rgb
    s = long_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(
        Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    )


def _resize_alpha(alpha: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (alpha.shape[1], alpha.shape[0]) == size:
        return alpha.astype(np.float32)
    return np.clip(resize_float(alpha, size), 0.0, 1.0)


def _crop_box(alpha: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The product's box in source pixels, from an alpha of the whole frame at any size."""
    h, w = alpha.shape
    rows = np.flatnonzero((alpha > 0.05).any(axis=1))
    cols = np.flatnonzero((alpha > 0.05).any(axis=0))
    if rows.size == 0:
        return 0, 0, height, width
    sy, sx = height / h, width / w
    m = MARGIN * max(width, height)
    top = max(0, int(rows[0] * sy - m))
    left = max(0, int(cols[0] * sx - m))
    bottom = min(height, int(np.ceil((rows[-1] + 1) * sy + m)))
    right = min(width, int(np.ceil((cols[-1] + 1) * sx + m)))
    return top, left, bottom, right


def cut_out(
    data: bytes,
    segmenter: Segmenter,
    max_pixels: int = MAX_PIXELS,
    work_px: int = WORK_PX,
    refine: bool = True,
    clean_edges: bool = True,
    plain: KeyLimits | None = PLAIN,
    recover: bool = True,
) -> Cutout:
    """Decode, segment, crop to the product, and make its edge: keyed against a plain
    backdrop, or the model's alpha (with the parts it dropped on a plain-ish backdrop
    recovered, ``recover``) refined by the photo's edges (``refine``) with its colour
    decontaminated (``clean_edges``). ``plain=None`` never keys.

    An image that already has transparency keeps its own alpha (nothing is segmented).
    """
    probe = decode(data, max_pixels, min_long_side=PROBE_PX)
    if probe.alpha is not None:
        return cutout_from_alpha(
            probe.rgb, probe.alpha.astype(np.float32) / 255.0, "source-alpha", refine=False
        )
    small = _fit(probe.rgb, PROBE_PX)
    coarse = segmenter.predict(small)
    backdrop = fit_backdrop(small, coarse, plain) if plain is not None else None
    doubt: gates.Stats | None = None
    if backdrop is not None and plain is not None:
        box = _keyed_box(probe.rgb, coarse, backdrop, probe.width, probe.height, plain)
        _, crop_rgb = _decode_crop(data, probe, box, work_px, max_pixels)
        keyed = _keyed(
            crop_rgb, coarse, backdrop, probe.width, probe.height, box, segmenter.name, plain
        )
        if not gates.key_failed(keyed.stats):
            return keyed
        # The key took what the model is sure of for backdrop, and found nothing it is sure
        # of itself (a white product on white paper): the model's answer, held for review.
        doubt = keyed.stats
    if recover:
        coarse, _ = recover_plain_backdrop_parts(small, coarse)
    top, left, bottom, right = _crop_box(coarse, probe.width, probe.height)
    _, crop_rgb = _decode_crop(data, probe, (top, left, bottom, right), work_px, max_pixels)
    ch, cw = crop_rgb.shape[:2]
    ph, pw = coarse.shape
    cy0, cx0 = top * ph / probe.height, left * pw / probe.width
    cy1, cx1 = bottom * ph / probe.height, right * pw / probe.width
    alpha = np.clip(resize_float(coarse, (cw, ch), box=(cx0, cy0, cx1, cy1)), 0.0, 1.0)
    if refine:
        upscale = max(1.0, cw / max(1e-6, (cx1 - cx0) * 320 / max(pw, ph)))
        alpha = refine_alpha(crop_rgb, alpha, radius=max(2, round(upscale * 3.5)))
    stats = gates.with_alpha_shape(
        gates.measure(coarse, probe.width, probe.height),
        alpha,
        model_agreement=None if doubt is None else doubt.model_agreement,
        key_certainty=None if doubt is None else doubt.key_certainty,
    )
    return Cutout(
        rgb=decontaminate(crop_rgb, alpha) if clean_edges else crop_rgb,
        alpha=alpha,
        width=probe.width,
        height=probe.height,
        crop=(top, left, bottom, right),
        stats=stats,
        model=segmenter.name,
    )


def _decode_crop(
    data: bytes,
    probe: Decoded,
    box: tuple[int, int, int, int],
    work_px: int,
    max_pixels: int,
) -> tuple[Decoded, np.ndarray]:
    """The photo's crop to ``box`` (source pixels), decoded as large as the product needs:
    its long side reaching work_px if it can (within 10 %: enlarging that little is
    invisible, and halving the decode is not)."""
    top, left, bottom, right = box
    subject_long = max(bottom - top, right - left, 1)
    reach = min(1.0, 0.9 * work_px / subject_long)
    need = int(np.ceil(max(probe.width, probe.height) * reach))
    scale = reduction_for(probe.width, probe.height, need) if probe.format == "JPEG" else 1
    full = probe if scale == probe.scale else decode(data, max_pixels, min_long_side=need)
    s = full.rgb.shape[1] / probe.width
    y0, x0 = int(top * s), int(left * s)
    y1, x1 = max(y0 + 1, round(bottom * s)), max(x0 + 1, round(right * s))
    return full, _fit(full.rgb[y0:y1, x0:x1], work_px)


def _keyed_box(
    probe_rgb: np.ndarray,
    coarse: np.ndarray,
    backdrop: Backdrop,
    width: int,
    height: int,
    limits: KeyLimits,
) -> tuple[int, int, int, int]:
    """The product's box in source pixels on a plain backdrop: what the key's quick look at
    the probe finds (a chain the model dropped reaches far), with the model's subject."""
    probe_rgb = _fit(probe_rgb, 800)
    ph, pw = probe_rgb.shape[:2]
    plane = backdrop.plane((width, height), (0, 0, height, width), (pw, ph))
    model = resize_float(coarse, (pw, ph)) > 0.5
    found = extent(probe_rgb, plane, model, limits)
    return _crop_box((found | model).astype(np.float32), width, height)


def _keyed(
    crop_rgb: np.ndarray,
    coarse: np.ndarray,
    backdrop: Backdrop,
    width: int,
    height: int,
    box: tuple[int, int, int, int],
    model: str,
    limits: KeyLimits,
    cost_usd: float = 0.0,
    prediction_id: str | None = None,
) -> Cutout:
    """A cut-out made by the backdrop key on the product's crop."""
    top, left, bottom, right = box
    ch, cw = crop_rgb.shape[:2]
    ph, pw = coarse.shape
    model_crop = np.clip(
        resize_float(
            coarse,
            (cw, ch),
            box=(left * pw / width, top * ph / height, right * pw / width, bottom * ph / height),
        ),
        0.0,
        1.0,
    )
    plane = backdrop.plane((width, height), box, (cw, ch))
    keyed = key(crop_rgb, plane, model_crop, limits)
    stats = gates.measure(_frame_for_gates(keyed.alpha, box, width, height), width, height)
    agreement = gates.agreement(model_crop, keyed.alpha, keyed.holes_mask)
    stats = gates.with_alpha_shape(
        stats,
        keyed.alpha,
        model_agreement=agreement,
        key_certainty=keyed.certain,
        keyed=True,
        holes_opened=keyed.holes,
        shadow_share=keyed.shadow_share,
    )
    return Cutout(
        rgb=keyed.rgb,
        alpha=keyed.alpha,
        width=width,
        height=height,
        crop=box,
        stats=stats,
        model=f"{model}+backdrop-key",
        cost_usd=cost_usd,
        prediction_id=prediction_id,
    )


def _frame_for_gates(
    alpha: np.ndarray, box: tuple[int, int, int, int], width: int, height: int, side: int = 1200
) -> np.ndarray:
    """The crop's alpha placed on its whole frame at about ``side`` px, reduced by its
    maximum so that a chain one pixel wide stays one connected piece."""
    top, left, _bottom, right = box
    ch, cw = alpha.shape
    scale = cw / max(right - left, 1)
    factor = max(1, int(np.ceil(max(width, height) * scale / side)))
    hb, wb = -(-ch // factor), -(-cw // factor)
    padded = np.zeros((hb * factor, wb * factor), np.float32)
    padded[:ch, :cw] = alpha
    small = padded.reshape(hb, factor, wb, factor).max(axis=(1, 3))
    s = scale / factor
    frame = np.zeros((max(1, round(height * s)), max(1, round(width * s))), np.float32)
    y0, x0 = min(round(top * s), frame.shape[0] - 1), min(round(left * s), frame.shape[1] - 1)
    part = small[: frame.shape[0] - y0, : frame.shape[1] - x0]
    frame[y0 : y0 + part.shape[0], x0 : x0 + part.shape[1]] = part
    return frame


def cutout_from_alpha(
    rgb: np.ndarray,
    alpha: np.ndarray,
    model: str,
    cost_usd: float = 0.0,
    prediction_id: str | None = None,
    work_px: int = WORK_PX,
    refine: bool = False,
    clean_edges: bool = True,
    plain: KeyLimits | None = None,
) -> Cutout:
    """A cut-out whose alpha (float32, the photo's size) came from anywhere: the photo's
    own transparency or a provider's matte. With ``plain``, a provider's matte of a
    plain-backdrop photo goes through the backdrop key like the local model's does."""
    h, w = alpha.shape
    scale = min(1.0, PROBE_PX / max(h, w))
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    coarse = _resize_alpha(alpha, small_size)
    doubt: gates.Stats | None = None
    if plain is not None:
        small = _fit(rgb, PROBE_PX)
        backdrop = fit_backdrop(small, coarse, plain)
        if backdrop is not None:
            box = _keyed_box(rgb, coarse, backdrop, w, h, plain)
            top, left, bottom, right = box
            crop_rgb = _fit(rgb[top:bottom, left:right], work_px)
            keyed = _keyed(
                crop_rgb, coarse, backdrop, w, h, box, model, plain, cost_usd, prediction_id
            )
            if not gates.key_failed(keyed.stats):
                return keyed
            doubt = keyed.stats
    stats = gates.measure(coarse, w, h)
    top, left, bottom, right = _crop_box(alpha, w, h)
    crop_rgb = _fit(rgb[top:bottom, left:right], work_px)
    ch, cw = crop_rgb.shape[:2]
    crop_alpha = _resize_alpha(alpha[top:bottom, left:right], (cw, ch))
    if refine:
        crop_alpha = refine_alpha(crop_rgb, crop_alpha, radius=4)
    return Cutout(
        rgb=decontaminate(crop_rgb, crop_alpha) if clean_edges else crop_rgb,
        alpha=crop_alpha,
        width=w,
        height=h,
        crop=(top, left, bottom, right),
        stats=gates.with_alpha_shape(
            stats,
            crop_alpha,
            model_agreement=None if doubt is None else doubt.model_agreement,
            key_certainty=None if doubt is None else doubt.key_certainty,
        ),
        model=model,
        cost_usd=cost_usd,
        prediction_id=prediction_id,
    )


def frame_alpha(cut: Cutout, width: int, height: int) -> np.ndarray:
    """The cut-out's alpha placed back on its whole frame, at (width, height)."""
    top, left, bottom, right = cut.crop
    sy, sx = height / cut.height, width / cut.width
    out = np.zeros((height, width), np.float32)
    y0, x0 = round(top * sy), round(left * sx)
    y1, x1 = max(y0 + 1, round(bottom * sy)), max(x0 + 1, round(right * sx))
    out[y0:y1, x0:x1] = _resize_alpha(cut.alpha, (x1 - x0, y1 - y0))
    return out


def background(theme: Theme) -> np.ndarray:
    w, h = theme.canvas
    return bg.render(theme.background, w, h, seed=theme.seed)


@dataclass(frozen=True)
class Rendered:
    data: bytes
    content_type: str
    image: np.ndarray
    layout: Layout  # where the product and its shadow landed
    variants: dict[int, bytes] = field(default_factory=dict)  # long side -> encoded copy


@dataclass(frozen=True)
class Enlargement:
    """How much a theme's frame would enlarge the product past its photo's resolution,
    and what the theme does about more than its ``max_upscale``."""

    needed: float  # canvas pixels per source pixel the frame asks for
    allowed: float  # the theme's max_upscale
    limit: float  # the most the cut-out may be scaled (canvas px per cut-out px)
    policy: str  # "shrink" or "review"

    @property
    def too_much(self) -> bool:
        return self.needed > self.allowed * 1.001

    @property
    def max_scale(self) -> float:
        """What ``render`` may scale the cut-out by."""
        return self.limit if self.too_much and self.policy == "shrink" else float("inf")

    @property
    def review_reason(self) -> str | None:
        if not self.too_much or self.policy != "review":
            return None
        return (
            f"resolution: the photo's product would be enlarged {self.needed:.2f}x (more than "
            f"max_upscale {self.allowed:g}): it would look soft"
        )

    def __str__(self) -> str:
        if not self.too_much:
            return f"{self.needed:.2f}x the photo's resolution (max_upscale {self.allowed:g})"
        if self.policy == "shrink":
            return (
                f"drawn smaller: {self.allowed:g}x the photo's resolution, where the frame "
                f"asks for {self.needed:.2f}x (max_upscale {self.allowed:g})"
            )
        return f"enlarged {self.needed:.2f}x past max_upscale {self.allowed:g}: held for review"


def enlargement(cut: Cutout, theme: Theme) -> Enlargement:
    """The theme's enlargement of this cut-out, measured against the source photo's own
    pixels (a cut-out decoded at half size has two source pixels per pixel)."""
    top, left, bottom, right = cut.crop
    h, w = cut.alpha.shape
    source_per_cut = ((bottom - top) / h + (right - left) / w) / 2
    box_top, box_left, box_bottom, box_right = subject_bbox(cut.alpha)  # what ``place`` scales
    fit = theme.frame.fit_scale(box_right - box_left, box_bottom - box_top)
    return Enlargement(
        fit / source_per_cut, theme.max_upscale, theme.max_upscale * source_per_cut, theme.upscale
    )


def render(
    rgb: np.ndarray,
    alpha: np.ndarray,
    backdrop: np.ndarray,
    theme: Theme,
    prepared: Image.Image | None = None,
    max_scale: float = float("inf"),
) -> Rendered:
    """One theme's composite, encoded (plus any smaller copies the theme asks for); the
    cut-out is never scaled past ``max_scale``."""
    frame = replace(theme.frame, max_scale=max_scale)
    out, layout = composite(backdrop, rgb, alpha, frame, theme.shadow, prepared=prepared)
    data = encode(out, theme.output_format, theme.quality, theme.progressive)
    variants = {}
    for side in theme.sizes:
        im = Image.fromarray(out)
        im.thumbnail((side, side), Image.Resampling.LANCZOS, reducing_gap=3.0)
        variants[side] = encode(np.asarray(im), theme.output_format, theme.quality)
    return Rendered(data, CONTENT_TYPES[theme.output_format], out, layout, variants)


def render_all(
    cut: Cutout, themes: Sequence[Theme], backdrops: Mapping[str, np.ndarray], workers: int = 2
) -> dict[str, Rendered]:
    """Every theme of one cut-out. The product is prepared once; themes render on
    ``workers`` threads (scaling, blending and encoding run in C without the GIL)."""
    prepared = subject(cut.rgb, cut.alpha)

    def one(theme: Theme) -> Rendered:
        limit = enlargement(cut, theme).max_scale
        return render(cut.rgb, cut.alpha, backdrops[theme.name], theme, prepared, limit)

    if workers <= 1 or len(themes) <= 1:
        return {t.name: one(t) for t in themes}
    with ThreadPoolExecutor(min(workers, len(themes))) as pool:
        return dict(zip([t.name for t in themes], pool.map(one, themes), strict=True))


def on_grey(rgb: np.ndarray, alpha: np.ndarray, grey: int = 200) -> np.ndarray:
    """The cut-out over neutral grey: how a person checks a mask at a glance."""
    a = alpha[..., None]
    return np.clip(rgb * a + grey * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


def on_grey_reduced(rgb: np.ndarray, alpha: np.ndarray, size: int, grey: int = 200) -> np.ndarray:
    """``on_grey`` box-reduced by the largest whole factor that keeps the long side at
    least ``size`` px: within one level of reducing ``on_grey``'s result, at half its CPU
    (each mask's preview in the UI)."""
    factor = max(rgb.shape[:2]) // size
    if factor < 2:
        return on_grey(rgb, alpha, grey)
    a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # Premultiplied by alpha ("RGBa"), the block average is the average of the composite.
    small = Image.fromarray(np.dstack([rgb, a8]), "RGBA").convert("RGBa").reduce(factor)
    arr = np.asarray(small, dtype=np.float32)
    out = arr[..., :3] + grey * (1.0 - arr[..., 3:] / 255.0) + 0.5
    return np.clip(out, 0, 255).astype(np.uint8)
