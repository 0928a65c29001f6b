"""Cut-outs on plain studio backdrops, at the photo's own resolution.

A salient-object model looks at 320 x 320 pixels and knows nothing of what jewellery is: it
fills the inside of a ring, drops a 2 px chain and keeps the backdrop's colour in the edge.
On a plain backdrop (seamless paper, a sweep, velvet) the backdrop itself can be modelled
instead, and everything that is not backdrop is product:

1. ``fit_backdrop``: a smooth colour surface (a cubic in x and y per channel, for sweeps and
   vignetting) fitted robustly to what the model calls background. If it does not explain
   the backdrop to within a few levels, the photo is not a plain-backdrop shot and the
   model's judgement stands.
2. ``key``: each pixel is compared with that surface. Backdrop is what is smooth, of the
   backdrop's hue, and no brighter than it: a shadow only scales the backdrop's colour
   down, softly, so lit backdrop floods into the shadows around the product but not across
   the product's sharp edges. What the flood does not reach is product, with these
   exceptions, each a physical argument:

   - the flood does not squeeze through a gap of a few pixels in the product's outline into
     what the model sees as product: a facet as pale as the shadow beside it is the
     product's surface, and what lies beyond such a gap is judged as an enclosed region;
   - what the flood took out of a compact part's outline over a broad front (a stud's rim
     facet as dark as its shadow) is product: a part that nearly fills its convex hull has
     no concavities of its own;
   - an enclosed region of backdrop colour is a hole (inside a ring, a link, a hoop) when
     the product encloses it with material, not with a single edge: a region behind one
     edge is the product's own surface (a white prong on white paper, a grey facet);
   - a hole in the product's shadow is as bright as shadows the flood met outside;
   - a thin line of backdrop crossing the product from one side to the other is a slot
     (between watch links) when the product beside it stands off it the same way on both
     sides, not where a part's own shading passes through the backdrop's brightness;
   - JPEG chroma bleeding beside a strongly coloured part is not product.

3. ``matte``: in a band a few pixels wide around every boundary, the alpha is solved from
   the compositing equation I = aF + (1 - a)B with B the nearby backdrop (shadows included)
   and F the nearest confident product: the solid interior for large parts, the centre line
   for thin ones (chains, wires, prongs), so a chain keeps its own width and colour. The
   product's colour there is solved too, so no backdrop fringes the edge on a new theme.
   Coverage is read mostly from brightness: a JPEG keeps colour at half resolution, so at
   a fine edge the colour is smeared across pixels the product does not cover. At a thick
   part's clear edge the band reaches a pixel deeper, where the lens still mixes paper in.

Everything is vectorised numpy/scipy on the product's crop (classified at half size when the
crop is over a megapixel, matted at full size). No Dagster, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

# The backdrop surface: a cubic in normalised frame coordinates (sweeps bend, vignetting is
# radial); more terms start to fit the product.
_TERMS = 10


def _design(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    x, y = xs.ravel() - 0.5, ys.ravel() - 0.5
    one = np.ones_like(x)
    return np.stack(
        [one, x, y, x * x, x * y, y * y, x**3, y**3, x * x * y, x * y * y], axis=1
    ).astype(np.float64)


@dataclass(frozen=True)
class KeyLimits:
    """How the key tells backdrop from product. Thresholds in 8-bit levels are floors: each
    photo's own noise, measured on its backdrop, raises them."""

    max_fit_rms: float = 1.25  # backdrop fit residual (levels) above which it is not plain
    min_fit_inliers: float = 0.6  # share of the model's background the fit must explain
    brighter: float = 4.0  # brighter than the backdrop by this much: product
    chroma: float = 3.0  # off the backdrop's hue by this much: product
    gradient: float = 4.0  # an edge (levels per pixel): shadows are softer than this
    shadow_floor: float = 0.6  # darker than the backdrop by this fraction: product, not shadow
    chroma_bleed: float = 0.3  # JPEG chroma within 8 px of a part this many times as coloured
    wall_px: int = 8  # material between a hole and the outer backdrop, at least
    big_hole_px: int = 5000  # an enclosed backdrop region this large is a hole regardless
    min_hole_px: int = 20  # smaller specks of backdrop colour inside a product are product
    wall_share: float = 0.6  # of an enclosure that must be unmistakably product
    slot_wall_share: float = 0.8  # the same for a slot crossing the product
    slot_one_side: float = 0.75  # of a slot's wall brighter, or darker, than the slot
    gap_px: int = 2  # the flood does not pass gaps in the outline up to twice this wide
    gap_model: float = 0.7  # into regions the model's mean alpha says are product
    compact: float = 0.85  # a part filling this share of its convex hull is compact
    compact_px: int = 400  # (parts this large): bites out of its outline are product
    bite_contact: float = 0.3  # of a bite's own outline on its part's hull, at least
    bite_model: float = 0.5  # and the model's alpha there, at least
    band_in: int = 3  # matting band inside the product's boundary (px)
    band_out: int = 2  # and outside it
    deep_contrast: float = 40.0  # an edge this far from the backdrop (levels): one px deeper
    sharpen: float = 1.3  # the band's alpha steepened around 0.5 (the lens softens edges)
    chroma_weight: float = 0.25  # of colour against brightness when solving the edge's alpha
    bleed_share: float = 0.35  # a line fainter than this beside a stronger one is its bleed
    faint_share: float = 0.5  # a line fainter than this share of the wires covers only part
    full_size_px: int = 1_250_000  # larger crops are classified at half size, matted at full


PLAIN = KeyLimits()  # the key as shipped


@dataclass(frozen=True)
class Backdrop:
    """A plain backdrop's colour as a smooth surface over the whole frame."""

    coef: np.ndarray  # (_TERMS, 3) per channel, in frame coordinates 0..1
    rms: float  # residual of the backdrop pixels the fit kept (levels)
    inliers: float  # share of the model's background the fit explained

    def plane(
        self, frame: tuple[int, int], box: tuple[int, int, int, int], size: tuple[int, int]
    ) -> np.ndarray:
        """The backdrop colour (float32 H x W x 3) over ``box`` (top, left, bottom, right in
        frame pixels of ``frame`` = (width, height)), sampled at ``size`` = (width, height)."""
        fw, fh = frame
        top, left, bottom, right = box
        w, h = size
        gw, gh = max(2, -(-w // 8)), max(2, -(-h // 8))
        ys = top + (np.arange(gh) + 0.5) * (bottom - top) / gh
        xs = left + (np.arange(gw) + 0.5) * (right - left) / gw
        yy, xx = np.meshgrid(ys / fh, xs / fw, indexing="ij")
        grid = (_design(xx, yy) @ self.coef).reshape(gh, gw, 3).astype(np.float32)
        channels = [
            np.asarray(Image.fromarray(grid[..., i], "F").resize((w, h), Image.Resampling.BILINEAR))
            for i in range(3)
        ]
        return np.dstack(channels)


def fit_backdrop(
    rgb: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits = KeyLimits()
) -> Backdrop | None:
    """Fit the backdrop on a small copy of the whole frame (``rgb`` uint8, ``model_alpha``
    the model's float alpha at the same size). None when the photo has no plain backdrop."""
    h, w = model_alpha.shape
    background = ndimage.binary_erosion(model_alpha < 0.1, iterations=2)
    if background.mean() < 0.1:
        return None
    idx = np.flatnonzero(background.ravel())
    if idx.size > 12000:
        idx = idx[:: idx.size // 12000]
    design = _design((idx % w + 0.5) / w, (idx // w + 0.5) / h)
    colour = rgb.reshape(-1, 3)[idx].astype(np.float64)
    every = np.arange(idx.size)
    coef, *_ = np.linalg.lstsq(design, colour, rcond=None)
    # Trimmed starts (what the model missed may be a tenth of its "background": a strap),
    # then rounds against the robust noise level.
    for q in (50, 70):
        err = np.linalg.norm(colour - design @ coef, axis=1)
        sub = every[err <= np.percentile(err, q)]
        coef, *_ = np.linalg.lstsq(design[sub], colour[sub], rcond=None)
    kept = every
    for _ in range(4):
        err = np.linalg.norm(colour - design @ coef, axis=1)
        sigma = float(np.median(err)) / 1.54 + 0.3  # the median of a 3-d normal's length
        kept = every[err < max(3.5 * sigma, 2.0)]
        coef, *_ = np.linalg.lstsq(design[kept], colour[kept], rcond=None)
    resid = colour[kept] - design[kept] @ coef
    rms = float(np.sqrt((resid**2).mean() / 3.0)) if kept.size else float("inf")
    inliers = kept.size / max(idx.size, 1)
    if rms > limits.max_fit_rms or inliers < limits.min_fit_inliers:
        return None
    return Backdrop(coef=coef, rms=rms, inliers=inliers)


@dataclass(frozen=True)
class Keyed:
    """The key's answer on one crop."""

    alpha: np.ndarray  # float32 H x W
    rgb: np.ndarray  # uint8 H x W x 3: the product's colour, backdrop removed at the edge
    holes: int  # enclosed see-through regions and slots cut out
    holes_mask: np.ndarray  # bool H x W: where they are
    certain: float  # share of the product whose colour alone says it is not backdrop
    shadow_share: float  # of the crop that is the product's shadow, left out
    thin_px: int  # centre-line pixels of parts too thin to have an interior


class _Evidence:
    """Per-pixel comparisons of a crop with its backdrop, and the photo's own thresholds."""

    def __init__(
        self, rgb: np.ndarray, plane: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits
    ) -> None:
        img = rgb.astype(np.float32)
        lum = (img[..., 0] + img[..., 1] + img[..., 2]) * np.float32(1 / 3)
        plane_lum = (plane[..., 0] + plane[..., 1] + plane[..., 2]) * np.float32(1 / 3)
        dl = lum - plane_lum  # brightness against the backdrop, in levels
        ib = np.einsum("ijk,ijk->ij", img, plane)
        bb = np.maximum(np.einsum("ijk,ijk->ij", plane, plane), 1.0)
        ii = np.einsum("ijk,ijk->ij", img, img)
        k = ib / bb  # brightness relative to the backdrop: a shadow scales it below 1
        hue_off = np.sqrt(np.maximum(ii - ib * k, 0.0))  # distance from the backdrop's hue
        # |I - B|, what the slots and thin parts are measured by
        diff = np.sqrt(np.maximum(ii - 2.0 * ib + bb, 0.0))
        del ii, ib
        hue_off = ndimage.uniform_filter(hue_off, 3)
        gy = ndimage.sobel(lum, 0)
        gx = ndimage.sobel(lum, 1)
        grad = np.hypot(gx, gy) / 8.0

        # Noise, measured where the model is sure it sees backdrop.
        sure = (model_alpha < 0.05) & (np.abs(dl) < 20)
        if sure.sum() < 200:
            sure = np.abs(dl) < 8
        sample = np.flatnonzero(sure.ravel())[:: max(1, int(sure.sum()) // 50000)]
        t_bright = max(limits.brighter, 5.0 * _robust_sd(dl.ravel()[sample]))
        t_hue = max(limits.chroma, 1.5 * float(np.percentile(hue_off.ravel()[sample], 99)))
        t_grad = max(limits.gradient, 6.0 * float(np.median(grad.ravel()[sample])))
        t_hue_map = np.maximum(t_hue, limits.chroma_bleed * _block_max(hue_off, 4, 8))
        floor = -limits.shadow_floor * plane_lum
        self.img, self.dl, self.k, self.diff = img, dl, k, diff
        self.hue_off, self.grad, self.plane_lum = hue_off, grad, plane_lum
        self.t_bright, self.t_grad, self.t_hue_map, self.floor = t_bright, t_grad, t_hue_map, floor
        self.t_hue = t_hue


def extent(
    rgb: np.ndarray,
    plane: np.ndarray,
    subject: np.ndarray,
    limits: KeyLimits = KeyLimits(),
) -> np.ndarray:
    """Where a product is, at a glance (bool, the size of ``rgb``): pixels that differ from
    the backdrop unmistakably, specks of one or two pixels left out. Finds what the model
    missed (a chain, a second earring) so the crop holds all of it. A piece at the frame's
    edge that does not meet the model's ``subject`` is the backdrop's own (a vignetted
    corner, the end of the paper); a chain that leaves the frame meets its pendant."""
    img = rgb.astype(np.float32)
    lum = (img[..., 0] + img[..., 1] + img[..., 2]) * np.float32(1 / 3)
    plane_lum = (plane[..., 0] + plane[..., 1] + plane[..., 2]) * np.float32(1 / 3)
    dl = lum - plane_lum
    ib = np.einsum("ijk,ijk->ij", img, plane)
    k = ib / np.maximum(np.einsum("ijk,ijk->ij", plane, plane), 1.0)
    hue_off = np.sqrt(np.maximum(np.einsum("ijk,ijk->ij", img, img) - ib * k, 0.0))
    grad = np.hypot(ndimage.sobel(lum, 0), ndimage.sobel(lum, 1)) / 8.0
    calm = np.abs(dl) < 8
    sample = np.flatnonzero(calm.ravel())[:: max(1, int(calm.sum()) // 20000)]
    t_bright = max(limits.brighter, 5.0 * _robust_sd(dl.ravel()[sample]))
    t_hue = max(limits.chroma, 1.5 * float(np.percentile(hue_off.ravel()[sample], 99)))
    t_grad = max(limits.gradient, 6.0 * float(np.median(grad.ravel()[sample])))
    found = (
        (hue_off > 3 * t_hue)
        | (dl > 2 * t_bright)
        | (dl < -limits.shadow_floor * plane_lum)
        | (grad > 3 * t_grad)
    )
    parts, n = ndimage.label(found, structure=_SQUARE)
    if not n:
        return found
    sizes = np.bincount(parts.ravel(), minlength=n + 1)
    keep = sizes >= 3

    # A fine chain is found in pieces with a pixel or two between them: the pieces of one
    # line, gaps of up to 4 px closed, are one group, so a chain that leaves the frame
    # meets its pendant through them.
    groups, _ = ndimage.label(_dilate(found, 2), structure=_SQUARE)
    group = np.zeros(n + 1, np.int64)
    group[parts[found]] = groups[found]
    m = max(1, round(0.03 * max(parts.shape)))  # the frame's rim, where vignetting bites
    g = int(groups.max()) + 1
    rim = np.zeros(g, bool)
    for edge in (groups[:m], groups[-m:], groups[:, :m], groups[:, -m:]):
        rim[edge] = True
    meets = np.zeros(g, bool)
    meets[groups[subject]] = True
    keep &= ~rim[group] | meets[group]
    keep[0] = False
    return keep[parts]


def _robust_sd(values: np.ndarray) -> float:
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _block_max(x: np.ndarray, block: int, reach: int) -> np.ndarray:
    """Maximum of ``x`` within about ``reach`` px of each pixel, computed on blocks."""
    h, w = x.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((hb * block, wb * block), x.dtype)
    padded[:h, :w] = x
    blocks = padded.reshape(hb, block, wb, block).max(axis=(1, 3))
    spread = ndimage.maximum_filter(blocks, size=2 * (-(-reach // block)) + 1)
    return np.repeat(np.repeat(spread, block, axis=0), block, axis=1)[:h, :w]


_SQUARE = np.ones((3, 3), bool)


def _dilate(mask: np.ndarray, px: int, square: bool = False) -> np.ndarray:
    if px <= 0:
        return mask
    return ndimage.binary_dilation(mask, _SQUARE if square else None, iterations=px)


def key(
    rgb: np.ndarray, plane: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits = KeyLimits()
) -> Keyed:
    """Cut the product out of a crop of a plain-backdrop photo.

    ``rgb`` uint8 H x W x 3; ``plane`` the backdrop's colour there (``Backdrop.plane``);
    ``model_alpha`` the segmentation model's alpha scaled to the crop (only its confident
    background is used, to measure the photo's noise).

    When the crop is large, which pixels are product is decided on a copy at half size (a
    2 px chain is still a line there), the answer's blocky edge is peeled back at full size
    where the photo is plainly backdrop, and the edge is matted at full size.
    """
    h, w = model_alpha.shape
    if h * w <= limits.full_size_px or min(h, w) < 32:
        found = _classify(rgb, plane, model_alpha, limits)
        img = found.img
        diff = found.diff
    else:
        hh, hw = h // 2, w // 2
        half = np.asarray(Image.fromarray(rgb[: 2 * hh, : 2 * hw]).reduce(2))
        # Distances and areas in pixels shrink with the copy.
        halved = replace(
            limits,
            wall_px=max(2, limits.wall_px // 2),
            gap_px=max(1, limits.gap_px // 2),
            min_hole_px=max(4, limits.min_hole_px // 4),
            compact_px=max(25, limits.compact_px // 4),
            big_hole_px=limits.big_hole_px // 4,
        )
        found = _classify(
            half,
            plane[: 2 * hh : 2, : 2 * hw : 2],
            model_alpha[: 2 * hh : 2, : 2 * hw : 2],
            halved,
        )
        # Thick parts, worked out on the half-size answer (a chain has no interior there).
        thick = _dilate(ndimage.binary_erosion(found.product, iterations=2), 3, square=True)
        found = found.upsampled(h, w)
        img = rgb.astype(np.float32)
        diff = np.sqrt(np.einsum("ijk,ijk->ij", img - plane, img - plane))
        _peel(found.product, _upsampled(thick, h, w), img, plane, model_alpha, limits)
    alpha, colour, thin_px = matte(rgb, img, found.product, plane, diff, found.gaps, limits)
    return Keyed(
        alpha=alpha,
        rgb=colour,
        holes=found.holes,
        holes_mask=found.holes_mask,
        certain=found.certain,
        shadow_share=found.shadow_share,
        thin_px=thin_px,
    )


def _peel(
    product: np.ndarray,
    thick: np.ndarray,
    img: np.ndarray,
    plane: np.ndarray,
    model_alpha: np.ndarray,
    limits: KeyLimits,
    steps: int = 2,
) -> None:
    """Take back, in place, the full-size pixels along a half-size answer's blocky edge that
    are plainly backdrop or shadow at full size (smooth, of the backdrop's hue, no
    brighter than it), so the matte measures the backdrop right at the edge. Only where
    the product is ``thick``: a chain's pale links are product by what they connect.
    Everything is measured at the edge's own pixels, not over the crop."""
    h, w = product.shape

    def lum_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rgb = img[np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)]
        return rgb.sum(axis=-1) * np.float32(1 / 3)

    def grad_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        n = {(dy, dx): lum_at(rows + dy, cols + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
        gx = (n[(-1, 1)] + 2 * n[(0, 1)] + n[(1, 1)]) - (n[(-1, -1)] + 2 * n[(0, -1)] + n[(1, -1)])
        gy = (n[(1, -1)] + 2 * n[(1, 0)] + n[(1, 1)]) - (n[(-1, -1)] + 2 * n[(-1, 0)] + n[(-1, 1)])
        return np.hypot(gx, gy) / 8.0

    sure = np.flatnonzero((model_alpha < 0.05).ravel())
    if sure.size < 100:
        return
    sample = sure[:: max(1, sure.size // 20000)]
    sr, sc = sample // w, sample % w
    dl_s = lum_at(sr, sc) - plane[sr, sc].sum(axis=1) / 3
    t_bright = max(limits.brighter, 5.0 * _robust_sd(dl_s))
    t_grad = max(limits.gradient, 6.0 * float(np.median(grad_at(sr, sc))))
    for _ in range(steps):
        rows, cols = np.nonzero(product & ndimage.binary_dilation(~product) & thick)
        if rows.size == 0:
            return
        here, back = img[rows, cols], plane[rows, cols]
        ib = (here * back).sum(axis=1)
        kk = ib / np.maximum((back * back).sum(axis=1), 1.0)
        hue = np.sqrt(np.maximum((here * here).sum(axis=1) - ib * kk, 0.0))
        back_lum = back.sum(axis=1) / 3
        dl = here.sum(axis=1) / 3 - back_lum
        plain = (
            (grad_at(rows, cols) < t_grad)
            & (dl < t_bright)
            & (dl > -limits.shadow_floor * back_lum)
            & (hue < 2 * limits.chroma)
        )
        product[rows[plain], cols[plain]] = False


def _upsampled(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """A half-size mask at (h, w), each pixel doubled; an odd last row or column repeats."""
    big = np.zeros((h, w), bool)
    twice = mask.repeat(2, axis=0).repeat(2, axis=1)
    big[: twice.shape[0], : twice.shape[1]] = twice
    if twice.shape[0] < h:
        big[twice.shape[0] :, : twice.shape[1]] = twice[-1:]
    if twice.shape[1] < w:
        big[:, twice.shape[1] :] = big[:, twice.shape[1] - 1 : twice.shape[1]]
    return big


@dataclass
class _Classified:
    """Which pixels of a crop are product, and what the key found on the way."""

    product: np.ndarray
    gaps: np.ndarray  # backdrop too narrow to stand clear of the product: its centre lines
    holes_mask: np.ndarray
    holes: int
    certain: float
    shadow_share: float
    img: np.ndarray
    diff: np.ndarray

    def upsampled(self, h: int, w: int) -> _Classified:
        return _Classified(
            product=_upsampled(self.product, h, w),
            gaps=_upsampled(self.gaps, h, w),
            holes_mask=_upsampled(self.holes_mask, h, w),
            holes=self.holes,
            certain=self.certain,
            shadow_share=self.shadow_share,
            img=self.img,
            diff=self.diff,
        )


def _border_labels(labels: np.ndarray) -> np.ndarray:
    """The labels found on the crop's outermost rows and columns."""
    return np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))


def _flood(passable: np.ndarray, lit: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """The passable regions (labels, count) and which of them are the outer backdrop: those
    at the crop's border holding lit backdrop (the largest lit one when the product fills
    the border)."""
    regions, n = ndimage.label(passable)
    has_lit = np.bincount(regions[lit], minlength=n + 1) > 0
    outer_ids = np.zeros(n + 1, bool)
    outer_ids[_border_labels(regions)] = True
    outer_ids &= has_lit
    outer_ids[0] = False
    if not outer_ids.any():
        sizes = np.bincount(regions[lit], minlength=n + 1)
        sizes[0] = 0
        outer_ids[int(np.argmax(sizes))] = True
    return regions, n, outer_ids


def _beyond_gaps(
    passable: np.ndarray, outer: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits
) -> np.ndarray:
    """Parts of the outer flood it reached only through gaps of up to ``2 * gap_px`` pixels
    (an outline the lens and a pale facet left open in a place or two), where the model
    sees product. Backdrop and shadow meet the lit backdrop along a broad front; the
    product's own surface behind its outline does not."""
    r = limits.gap_px
    core = ndimage.binary_erosion(passable, iterations=r, border_value=1) & outer
    parts, n = ndimage.label(core)
    if n < 2:
        return np.zeros_like(outer)
    area = np.bincount(parts.ravel(), minlength=n + 1)
    seen = np.bincount(parts.ravel(), weights=model_alpha.ravel(), minlength=n + 1)
    product = (seen > limits.gap_model * area) & (area >= limits.min_hole_px)
    product[_border_labels(parts)] = False
    product[0] = False
    if not product.any():
        return np.zeros_like(outer)
    return ndimage.binary_dilation(product[parts], iterations=r) & outer


def _classify(
    rgb: np.ndarray, plane: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits
) -> _Classified:
    ev = _Evidence(rgb, plane, model_alpha, limits)
    img, dl, k, hue_off, grad, diff = ev.img, ev.dl, ev.k, ev.hue_off, ev.grad, ev.diff
    t_bright, t_grad, t_hue_map, floor = ev.t_bright, ev.t_grad, ev.t_hue_map, ev.floor
    t_hue, plane_lum = ev.t_hue, ev.plane_lum

    passable = (grad < t_grad) & (hue_off < t_hue_map) & (dl < t_bright) & (dl > floor)
    lit = passable & (dl > -t_bright)
    regions, n, outer_ids = _flood(passable, lit)
    outer = outer_ids[regions]
    beyond = _beyond_gaps(passable, outer, model_alpha, limits)
    if beyond.any():
        passable &= ~(beyond & _dilate(outer & ~beyond, 1, square=True))
        lit &= passable
        regions, n, outer_ids = _flood(passable, lit)
        outer = outer_ids[regions]

    # The darkest shadow the flood met around the product: holes in shadow are no darker.
    ring = outer & _dilate(~outer, 6) & ~_dilate(~outer, 2)
    k_shadow = float(np.percentile(k[ring], 2)) if ring.sum() > 50 else 0.9
    unmistakable = (hue_off > t_hue_map) | (dl > t_bright) | (k < k_shadow - 0.05)

    # Enclosed candidates: every passable region other than the outer backdrop.
    area = np.bincount(regions.ravel(), minlength=n + 1)
    near_outer = _dilate(outer, limits.wall_px - 1, square=True)
    touches = np.bincount(regions[near_outer], minlength=n + 1) > 0
    k_mean = np.bincount(regions.ravel(), weights=k.ravel(), minlength=n + 1) / np.maximum(area, 1)
    candidate = ~outer_ids & (area >= limits.min_hole_px)
    candidate[0] = False
    backdrop_ids = outer_ids.copy()
    # A hole shows the backdrop, lit or in the product's shadow, never brighter than the
    # backdrop around it (a white dial index on a dark watch face is brighter).
    dl_mean = np.bincount(regions.ravel(), weights=dl.ravel(), minlength=n + 1) / np.maximum(
        area, 1
    )
    bright_enough = (k_mean >= k_shadow - 0.02) & (dl_mean <= 1.0 + 0.25 * t_bright)
    # A shadow keeps the backdrop's hue. Away from the region's rim (JPEG bleeds a
    # coloured part's chroma a few pixels in), a shadowed hole is the backdrop's hue; a
    # steel surface on warm paper is not.
    inner = ndimage.binary_erosion(passable, iterations=2)
    inner_area = np.bincount(regions[inner], minlength=n + 1)
    inner_hue = np.where(
        inner_area > 0,
        np.bincount(regions[inner], weights=hue_off[inner], minlength=n + 1)
        / np.maximum(inner_area, 1),
        np.bincount(regions.ravel(), weights=hue_off.ravel(), minlength=n + 1)
        / np.maximum(area, 1),
    )
    shadowed = dl_mean < -t_bright
    bright_enough &= ~shadowed | (inner_hue <= max(5.5, 1.5 * t_hue))
    walled = candidate & (~touches | (area >= limits.big_hole_px)) & bright_enough
    backdrop_ids |= walled
    # Regions behind a thin wall: a hole only if that wall is unmistakably product.
    behind_wall = np.flatnonzero(candidate & touches & (area < limits.big_hole_px) & bright_enough)
    if behind_wall.size:
        boxes = ndimage.find_objects(regions)
        for i in behind_wall:
            sl = _grow(boxes[i - 1], 3, regions.shape)
            region = regions[sl] == i
            wall = _dilate(region, 3) & ~region & ~passable[sl]
            if wall.any() and unmistakable[sl][wall].mean() >= limits.wall_share:
                backdrop_ids[i] = True
    holes = int((backdrop_ids & ~outer_ids).sum())
    background = backdrop_ids[regions]
    holes_mask = background & ~outer

    slots = _slots(diff, background, outer, hue_off, t_hue_map, dl, t_bright, unmistakable, limits)
    holes += slots[1]
    background |= slots[0]
    holes_mask |= slots[0]

    # Hysteresis: product is what is connected to unmistakable evidence.
    weak = ~background
    strong = weak & (
        (grad > 2 * t_grad)
        | (hue_off > 2 * t_hue_map)
        | (dl > 2 * t_bright)
        | (dl < floor)
        | (~passable & (np.abs(dl) > 3 * t_bright))
    )
    parts, m = ndimage.label(weak)
    keep = np.bincount(parts[strong], minlength=m + 1) > 0
    keep[0] = False
    product = keep[parts]
    bites = _bites(product, background & ~holes_mask, model_alpha, limits)
    product |= bites
    background &= ~bites

    shadow = (background & ~holes_mask) & (
        k < 1.0 - max(0.03, t_bright / max(float(plane_lum.mean()), 1.0))
    )
    # Where backdrop is too narrow to stand clear of the product (a slot between links, a
    # small hole), its centre line says what the backdrop there looks like.
    away = ndimage.distance_transform_cdt(~product, metric="taxicab")
    gaps = slots[0] | (~product & (away >= ndimage.maximum_filter(away, size=5)))
    return _Classified(
        product=product,
        gaps=gaps,
        holes_mask=holes_mask,
        holes=holes,
        certain=float((unmistakable & product).sum()) / max(int(product.sum()), 1),
        shadow_share=float(shadow.mean()),
        img=img,
        diff=diff,
    )


def _bites(
    product: np.ndarray, flooded: np.ndarray, model_alpha: np.ndarray, limits: KeyLimits
) -> np.ndarray:
    """Backdrop-coloured bites out of compact parts' outlines, which are product: a stone's
    pale facet meets the paper where the lens and the shadow left its outline invisible
    over a broad front, and the flood took the facet. A compact part (filling at least
    ``compact`` of its convex hull: a stone, a stud, a pearl) has no concavities of its own
    to speak of, so flooded pixels inside its hull that the model sees as product are
    bites (``bite_model``), when a good part of their own outline lies on the hull's
    (``bite_contact``). The gap between two parts that touch crosses their hull and
    reaches its outline only at its two ends; a part with real concavities (a ring, a
    chain, a watch on its strap) is not compact."""
    bites = np.zeros_like(product)
    parts, _ = ndimage.label(product, structure=_SQUARE)
    for i, sl in enumerate(ndimage.find_objects(parts), start=1):
        if sl is None:
            continue
        part = parts[sl] == i
        area = int(part.sum())
        if area < limits.compact_px:
            continue
        ys, xs = np.nonzero(part & ~ndimage.binary_erosion(part))
        try:
            corners = ConvexHull(np.column_stack([xs, ys]).astype(np.float64)).vertices
        except QhullError:  # all on a line
            continue
        drawn = Image.new("1", (part.shape[1], part.shape[0]), 0)
        ImageDraw.Draw(drawn).polygon(
            [(float(xs[j]), float(ys[j])) for j in corners], fill=1, outline=1
        )
        hull = np.asarray(drawn, bool)
        if area < limits.compact * int(hull.sum()):
            continue
        fill = hull & flooded[sl] & (model_alpha[sl] >= limits.bite_model)
        if not fill.any():
            continue
        pieces, n = ndimage.label(fill)
        on_hull = hull & ~ndimage.binary_erosion(hull, iterations=2)
        contact = np.bincount(pieces[on_hull & fill], minlength=n + 1)
        outline = np.bincount(pieces[fill & ~ndimage.binary_erosion(fill)], minlength=n + 1)
        bite = contact >= limits.bite_contact * np.maximum(outline, 1)
        bite[0] = False
        bites[sl] |= bite[pieces]
    return bites


def _grow(sl: tuple[slice, slice], px: int, shape: tuple[int, ...]) -> tuple[slice, slice]:
    return (
        slice(max(0, sl[0].start - px), min(shape[0], sl[0].stop + px)),
        slice(max(0, sl[1].start - px), min(shape[1], sl[1].stop + px)),
    )


def _slots(
    dist: np.ndarray,
    background: np.ndarray,
    outer: np.ndarray,
    hue_off: np.ndarray,
    t_hue_map: np.ndarray,
    dl: np.ndarray,
    t_bright: float,
    unmistakable: np.ndarray,
    limits: KeyLimits,
) -> tuple[np.ndarray, int]:
    """Thin lines of backdrop-like colour that cross the product and reach the outer
    backdrop at both ends (the gaps between a watch bracelet's links)."""
    slots = np.zeros_like(background)
    if background.all():
        return slots, 0
    rows = np.flatnonzero((~background).any(axis=1))
    cols = np.flatnonzero((~background).any(axis=0))
    pad = 4
    r0, r1 = max(0, rows[0] - pad), min(dist.shape[0], rows[-1] + pad + 1)
    c0, c1 = max(0, cols[0] - pad), min(dist.shape[1], cols[-1] + pad + 1)
    box = (slice(r0, r1), slice(c0, c1))
    sub = dist[box]
    closed = ndimage.grey_closing(sub, size=(7, 7))  # fills valleys narrower than 7 px
    valley = (closed - sub) >= np.maximum(8.0, 0.2 * closed)
    valley &= ~background[box] & (hue_off[box] < 2 * t_hue_map[box]) & (dl[box] < t_bright)
    lines, n = ndimage.label(valley, structure=np.ones((3, 3)))
    if not n:
        return slots, 0
    sizes = np.bincount(lines.ravel(), minlength=n + 1)
    reach = limits.wall_px
    count = 0
    boxes = ndimage.find_objects(lines)
    for i in np.flatnonzero(sizes >= 4 * reach):
        if i == 0:
            continue
        sl = _grow(boxes[i - 1], reach + 1, lines.shape)
        line = lines[sl] == i
        full = (slice(sl[0].start + r0, sl[0].stop + r0), slice(sl[1].start + c0, sl[1].stop + c0))
        ends = _dilate(line, reach) & outer[full]
        if ndimage.label(ends)[1] < 2:
            continue
        wall = _dilate(line, 3) & ~line & ~background[full]
        if not wall.any():
            continue
        # Backdrop between two parts has product standing off it the same way on both
        # sides (darker links, or brighter); where one part's shading passes through the
        # backdrop's brightness (a pearl's side), |I - B| has a valley that is no gap.
        above = float((dl[full][wall] > dl[full][line].mean()).mean())
        if max(above, 1.0 - above) < limits.slot_one_side:
            continue
        if unmistakable[full][wall].mean() >= limits.slot_wall_share:
            slots[full] |= line
            count += 1
    return slots, count


def matte(
    rgb: np.ndarray,
    img: np.ndarray,
    product: np.ndarray,
    plane: np.ndarray,
    diff: np.ndarray,
    gaps: np.ndarray,
    limits: KeyLimits = KeyLimits(),
) -> tuple[np.ndarray, np.ndarray, int]:
    """Soft alpha and decontaminated colour from a binary product mask (``rgb`` uint8 and
    the same as float32, ``img``).

    Returns (alpha float32, colour uint8, centre-line pixels of thin parts)."""
    ri, ro = limits.band_in, limits.band_out
    alpha = product.astype(np.float32)
    if not product.any():
        return alpha, rgb.copy(), 0
    grown = _dilate(product, ro)
    core = ndimage.binary_erosion(product, iterations=ri, border_value=1)
    # Where a part is thick enough, the lens mixes one more pixel in from its edge: the band
    # reaches that pixel, and the product's colour is read beyond it. A part just thick
    # enough for ``core`` keeps it.
    deeper = ndimage.binary_erosion(core, border_value=1)
    deep_core = deeper | (core & ~_dilate(deeper, 3))
    band = (product & ~deep_core) | (grown & ~product)
    rows, cols = np.nonzero(band)
    # The backdrop behind each band pixel: the mean of clear backdrop near it (its shadow
    # included), wider where the product leaves no backdrop close by (inside a chain's
    # link), the fitted surface beyond that.
    clear = (~grown | gaps).astype(np.float32)
    coarse = 2 if product.size > limits.full_size_px else 1
    back = _local_mean(img, clear, rows, cols, 5, coarse)
    missing = np.isnan(back[:, 0])
    if missing.any():
        back[missing] = _local_mean(img, clear, rows[missing], cols[missing], 20, 2 * coarse)
    back = np.where(np.isnan(back), plane[rows, cols], back)
    here = img[rows, cols]
    # The product colour each band pixel mixes: the nearest confident product pixel, which
    # is the solid interior for large parts and the centre line for thin ones.
    centre = _centre_lines(diff, product & ~_dilate(core, ri + 2))
    # A faint line right beside a part that stands out far more is that part's colour
    # bled into the backdrop (JPEG keeps colour at half resolution; a lens spreads it),
    # or noise, not a wire of its own: its pixels are mixed against the part's colour.
    beside = ndimage.maximum_filter(np.where(centre | core, diff, 0.0), size=2 * ri + 3)
    centre &= diff >= limits.bleed_share * beside
    if (core | centre).any():
        # At a faint edge (white on white, a shaded rim against its shadow) the product's own
        # shading outweighs the lens: its colour is read right at the band, which is not
        # widened there.
        nearest = ndimage.distance_transform_cdt(
            ~(core | centre), metric="chessboard", return_distances=False, return_indices=True
        )
        ny, nx = nearest[0][rows, cols], nearest[1][rows, cols]
        faint_edge = ((img[ny, nx] - back) ** 2).sum(axis=1) < limits.deep_contrast**2
        # Elsewhere, where that pixel is on the rim of a thick part's core, the colour is
        # read from its deeper neighbour (straight on from the band pixel if it can).
        rim = np.flatnonzero(~faint_edge & core[ny, nx] & ~deep_core[ny, nx])
        if rim.size:
            qy, qx = ny[rim], nx[rim]
            ahead = (np.sign(qy - rows[rim]), np.sign(qx - cols[rim]))
            found = np.zeros(rim.size, bool)
            for dy, dx in [ahead, *((a, b) for a in (-1, 0, 1) for b in (-1, 0, 1))]:
                ty = np.clip(qy + dy, 0, product.shape[0] - 1)
                tx = np.clip(qx + dx, 0, product.shape[1] - 1)
                hit = ~found & deeper[ty, tx]
                ny[rim[hit]], nx[rim[hit]] = ty[hit], tx[hit]
                found |= hit
        fg = img[ny, nx]
    else:
        fg = here
        faint_edge = np.ones(rows.size, bool)
    span = fg - back
    if centre.any():  # (so there is a confident pixel, and ny, nx are set)
        # A line much fainter than the product's wires is not a wire shown in full: it is
        # one too fine to cover a pixel, or colour bled into the backdrop. Its own colour
        # is not the product's; the product's wires say how far from the backdrop a whole
        # pixel of it would be, and it is mixed against that.
        wire = float(np.percentile(diff[centre], 75))
        faint = centre[ny, nx] & ~core[ny, nx]
        k = np.clip(limits.faint_share * wire / np.maximum(diff[ny, nx], 1e-3), 1.0, 4.0)
        span = np.where(faint[:, None], span * k[:, None], span)
    num = _weighted_dot(here - back, span, limits.chroma_weight)
    den = _weighted_dot(span, span, limits.chroma_weight)
    solvable = (span * span).sum(axis=1) > 25.0
    a = np.where(solvable, np.clip(num / np.maximum(den, 1e-3), 0.0, 1.0), alpha[rows, cols])
    a = np.where(faint_edge & core[rows, cols], 1.0, a)
    a = np.clip((a - 0.5) * limits.sharpen + 0.5, 0.0, 1.0)
    alpha[rows, cols] = a
    # The product's own colour there: solved where alpha says enough of it is present,
    # the nearest solid product's colour where it does not.
    a3 = a[:, None]
    solved = (here - (1.0 - a3) * back) / np.maximum(a3, 1e-3)
    trust = np.clip((a3 - 0.05) / 0.35, 0.0, 1.0)
    colour = rgb.copy()
    colour[rows, cols] = np.clip(solved * trust + fg * (1.0 - trust) + 0.5, 0, 255)
    return alpha, colour, int(centre.sum())


def _weighted_dot(a: np.ndarray, b: np.ndarray, chroma: float) -> np.ndarray:
    """Row-wise dot product of colour differences with their chromatic part (what is
    orthogonal to grey) weighted by ``chroma`` against their brightness."""
    grey = a.sum(axis=1) * b.sum(axis=1) / 3.0
    return grey + chroma * ((a * b).sum(axis=1) - grey)


def _local_mean(
    img: np.ndarray,
    weight: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    radius: int,
    reduce: int = 1,
) -> np.ndarray:
    """Weighted box mean of ``img`` around each (row, col), NaN where the window holds too
    little weight; worked out over the box that holds the pixels asked for, on a grid
    ``reduce`` times coarser (a backdrop is smooth)."""
    h, w = weight.shape
    pad = radius + reduce
    r0, r1 = max(0, int(rows.min()) - pad), min(h, int(rows.max()) + pad + 1)
    c0, c1 = max(0, int(cols.min()) - pad), min(w, int(cols.max()) + pad + 1)
    wt = weight[r0:r1, c0:c1]
    planes = [wt] + [img[r0:r1, c0:c1, ch] * wt for ch in range(3)]
    if reduce > 1:
        planes = [
            np.asarray(Image.fromarray(np.ascontiguousarray(p, np.float32), "F").reduce(reduce))
            for p in planes
        ]
    size = 2 * max(1, round(radius / reduce)) + 1
    rr = np.minimum((rows - r0) // reduce, planes[0].shape[0] - 1)
    cc = np.minimum((cols - c0) // reduce, planes[0].shape[1] - 1)
    den = ndimage.uniform_filter(planes[0], size, mode="constant")[rr, cc]
    out = np.empty((rows.size, 3), np.float32)
    for ch in range(3):
        out[:, ch] = ndimage.uniform_filter(planes[ch + 1], size, mode="constant")[rr, cc]
    out /= np.maximum(den, 1e-6)[:, None]
    out[den <= (0.02 if radius < 10 else 0.005)] = np.nan
    return out


def _centre_lines(diff: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Centre lines of thin parts among the pixels ``where``: those that stand out from the
    backdrop more than the pixels two steps to either side, across at least one direction,
    connected to a line that stands out clearly. Worked out at those pixels only."""
    h, w = diff.shape
    rows, cols = np.nonzero(where & (diff >= 5.0))
    here = diff[rows, cols]

    def at(dy: int, dx: int) -> np.ndarray:
        return diff[np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]

    margin = np.maximum(4.0, 0.25 * here)
    peak = np.zeros(rows.size, bool)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        peak |= (
            (here >= at(dy, dx))
            & (here >= at(-dy, -dx))
            & (here >= at(2 * dy, 2 * dx) + margin)
            & (here >= at(-2 * dy, -2 * dx) + margin)
        )
    weak = np.zeros((h, w), bool)
    weak[rows[peak], cols[peak]] = True
    lines, n = ndimage.label(weak, structure=_SQUARE)
    strong = np.zeros((h, w), bool)
    clear = peak & (here >= 10.0)
    strong[rows[clear], cols[clear]] = True
    keep = np.bincount(lines[strong], minlength=n + 1) > 0
    keep[0] = False
    return keep[lines]
