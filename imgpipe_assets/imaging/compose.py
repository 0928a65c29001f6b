"""Framing a cut-out on a canvas, casting its shadow, and blending it in.

Blending is Porter-Duff "over" on 8-bit straight colour (Pillow's ``alpha_composite``, in
C): out = fg*a + bg*(1-a). The product is scaled premultiplied, so transparent pixels never
bleed colour into its edge. A glossy floor's reflection and then the shadows (contact,
drop, floating: ``Shadow``) are painted on the background before the product, so they never
darken it, and only the rectangle they and the product touch is worked on.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage


@dataclass(frozen=True)
class Frame:
    """Where the subject sits on the canvas."""

    canvas_w: int
    canvas_h: int
    padding: float = 0.1  # fraction of the canvas kept clear on every side
    align: str = "center"  # "center" or "bottom" (standing products rest on the floor)
    max_scale: float = float("inf")  # the most the cut-out is enlarged (canvas px per its px)
    lift: float = 0.0  # a floating product's height above the floor, fraction of the canvas

    def fit_scale(self, width: int, height: int) -> float:
        """The scale that fits a ``width`` x ``height`` product inside the padding."""
        box_w = max(1, int(self.canvas_w * (1 - 2 * self.padding)))
        box_h = max(1, int(self.canvas_h * (1 - 2 * self.padding - self.lift)))
        return min(box_w / width, box_h / height)


FOOTPRINTS = ("auto", "base", "outline")


@dataclass(frozen=True)
class Shadow:
    """The shadows a composite casts, each off when its opacity is 0.

    ``light`` is where the light comes from, in compass degrees on the image (0 above, 90
    from the right, 270 from the left); drop and floating shadows fall away from it and the
    contact shadow leans a little away. Softness is a blur: a fraction of the product's
    width for the contact shadow, of the canvas's shorter side for the others.
    """

    light: float = 323.0
    # Contact: where the product touches the surface. "base": the lowest parts of a standing
    # product, darkest where they touch and fading as they rise; "outline": a piece lying
    # flat touches all along its outline; "auto": base when the theme aligns to the bottom.
    contact_opacity: float = 0.35
    contact_blur: float = 0.035  # fraction of the subject's width
    contact_height: float = 0.06  # its depth on the floor, a fraction of the footprint's width
    footprint: str = "auto"
    # Drop: the silhouette cast on the surface behind, ``drop_distance`` away from the light.
    drop_opacity: float = 0.0
    drop_blur: float = 0.03
    drop_distance: float = 0.025
    # Floating: the product hovers ``float_lift`` above its shadow (a fraction of the canvas).
    float_opacity: float = 0.0
    float_blur: float = 0.04
    float_lift: float = 0.04
    # Reflection: the product mirrored in a glossy floor, fading over ``reflection_fade`` of
    # its height, softened by ``reflection_blur`` (standing products only).
    reflection_opacity: float = 0.0
    reflection_fade: float = 0.3
    reflection_blur: float = 0.002

    def __post_init__(self) -> None:
        if self.footprint not in FOOTPRINTS:
            raise ValueError(f"footprint must be one of {', '.join(FOOTPRINTS)}")
        for name in ("contact_opacity", "drop_opacity", "float_opacity", "reflection_opacity"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name.replace('_opacity', '')} strength must be 0-1")
        for name in ("contact_blur", "drop_blur", "float_blur", "reflection_blur"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                raise ValueError(f"{name.replace('_blur', '')} softness must be 0-0.5")
        if not 0.0 <= self.float_lift <= 0.3 or not 0.0 <= self.drop_distance <= 0.3:
            raise ValueError("lift and distance must be 0-0.3 of the canvas")
        if not 0.02 <= self.reflection_fade <= 2.0:
            raise ValueError("reflection fade must be 0.02-2 of the product's height")

    @property
    def away(self) -> tuple[float, float]:
        """The unit (x, y) image direction shadows fall in: away from the light."""
        theta = np.deg2rad(self.light)
        return -float(np.sin(theta)), float(np.cos(theta))

    def lift_for(self, align: str) -> float:
        """How far the product is raised on a canvas aligned ``align``."""
        return self.float_lift if self.float_opacity > 0 and align == "bottom" else 0.0


def subject_bbox(alpha: np.ndarray, threshold: float = 0.05) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive, of pixels above ``threshold``; whole frame if none."""
    rows = np.flatnonzero((alpha > threshold).any(axis=1))
    cols = np.flatnonzero((alpha > threshold).any(axis=0))
    if rows.size == 0:
        return 0, 0, alpha.shape[0], alpha.shape[1]
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _rgba(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a8 = alpha if alpha.dtype == np.uint8 else np.clip(alpha * 255.0 + 0.5, 0, 255)
    return np.dstack([rgb, a8.astype(np.uint8)])


def subject(rgb: np.ndarray, alpha: np.ndarray) -> Image.Image:
    """The product cropped to its box as a premultiplied RGBa image, ready to be scaled for
    any number of themes (scaling premultiplied keeps backdrop colour out of the edge)."""
    top, left, bottom, right = subject_bbox(alpha)
    crop = _rgba(rgb[top:bottom, left:right], alpha[top:bottom, left:right])
    return Image.fromarray(crop, "RGBA").convert("RGBa")


def place(
    rgb: np.ndarray, alpha: np.ndarray, frame: Frame, prepared: Image.Image | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Crop to the subject, scale it to fit inside the padding (never past the frame's
    ``max_scale``); (RGBA uint8, (x, y) offset).

    ``prepared`` is ``subject(rgb, alpha)`` computed once for several themes."""
    crop = prepared if prepared is not None else subject(rgb, alpha)
    w, h = crop.size
    scale = min(frame.fit_scale(w, h), frame.max_scale)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    # Lanczos where the product shrinks a lot (moire-free fine chains); bicubic, as sharp and
    # cheaper, for the small reductions and enlargements a well-sized cut-out needs.
    resample = Image.Resampling.LANCZOS if scale < 0.6 else Image.Resampling.BICUBIC
    fg = np.asarray(crop.resize((new_w, new_h), resample, reducing_gap=3.0).convert("RGBA"))
    x = (frame.canvas_w - new_w) // 2
    if frame.align == "bottom":
        lifted = int(frame.canvas_h * (frame.padding + frame.lift))
        y = frame.canvas_h - lifted - new_h
    else:
        y = (frame.canvas_h - new_h) // 2
    return fg, (x, y)


Rect = tuple[int, int, int, int]  # top, left, bottom, right


def _blurred(rect: Rect, paint: Callable[[float, Rect], np.ndarray], sigma: float) -> np.ndarray:
    """A shape painted over ``rect`` at reduced resolution, blurred, then scaled up (as 8-bit
    coverage): shadows are soft, so the reduced canvas loses nothing visible."""
    top, left, bottom, right = rect
    scale = min(1.0, max(0.125, 6.0 / max(sigma, 1e-6)))
    small = paint(scale, rect)
    blurred = ndimage.gaussian_filter(small, max(0.5, sigma * scale), mode="constant")
    image = Image.fromarray(np.clip(blurred * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return np.asarray(image.resize((right - left, bottom - top), Image.Resampling.BILINEAR))


def _footprint(a: np.ndarray) -> tuple[int, np.ndarray]:
    """The product's base row and, per column, how much it touches the floor there: 1 where
    its lowest opaque pixel is on the base, fading as the underside rises away from it."""
    solid = a > 127
    has = solid.any(axis=0)
    if not has.any():
        return -1, np.zeros(a.shape[1], np.float32)
    lowest = a.shape[0] - 1 - np.argmax(solid[::-1], axis=0)
    base = int(lowest[has].max())
    rise = (base - lowest).astype(np.float32)
    touch = np.exp(-rise / max(2.0, 0.02 * a.shape[0]))
    return base, np.where(has, touch, 0.0).astype(np.float32)


def _band(
    profile: np.ndarray, x: int, floor: int, half_h: float, sigma: float, ch: int, cw: int
) -> tuple[Rect, Callable[[float, Rect], np.ndarray]] | None:
    """A shadow lying on the floor at canvas row ``floor``: per column (from canvas column
    ``x``) the ``profile``'s darkness, an ellipse's depth deep."""
    cols = np.flatnonzero(profile > 0.01)
    if cols.size == 0:
        return None
    reach = 3 * sigma
    top, bottom = floor - half_h - reach, floor + half_h + reach
    rect = _clip((top, x + cols[0] - reach, bottom, x + cols[-1] + 1 + reach), ch, cw)
    if rect[2] <= rect[0] or rect[3] <= rect[1]:
        return None

    def paint(scale: float, r: Rect) -> np.ndarray:
        t, left, b, right = r
        sh, sw = max(1, round((b - t) * scale)), max(1, round((right - left) * scale))
        at = np.arange(sw) / scale + left - x
        darkness = np.interp(at, np.arange(profile.size), profile, left=0.0, right=0.0)
        d = ((np.arange(sh) / scale + t - floor) / half_h) ** 2
        return (np.clip(1.0 - d, 0.0, 1.0)[:, None] * darkness[None, :]).astype(np.float32)

    return rect, paint


def _silhouette(
    a: np.ndarray, at: tuple[float, float], sigma: float, ch: int, cw: int
) -> tuple[Rect, Callable[[float, Rect], np.ndarray]] | None:
    """The product's silhouette with its top-left at canvas ``at`` (x, y)."""
    h, w = a.shape
    px, py = at
    reach = 3 * sigma
    rect = _clip((py - reach, px - reach, py + h + reach, px + w + reach), ch, cw)
    if rect[2] <= rect[0] or rect[3] <= rect[1]:
        return None

    def paint(scale: float, r: Rect) -> np.ndarray:
        t, left, b, right = r
        sh, sw = max(1, round((b - t) * scale)), max(1, round((right - left) * scale))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BILINEAR), np.float32)
        out = np.zeros((sh, sw), np.float32)
        oy, ox = round((py - t) * scale), round((px - left) * scale)
        y0, x0 = max(0, oy), max(0, ox)
        y1, x1 = min(sh, oy + size[1]), min(sw, ox + size[0])
        if y1 > y0 and x1 > x0:
            out[y0:y1, x0:x1] = small[y0 - oy : y1 - oy, x0 - ox : x1 - ox] / 255.0
        return out

    return rect, paint


def _falloff(rect: Rect, paint: Callable[[float, Rect], np.ndarray], sigma: float) -> np.ndarray:
    """Occlusion as it falls off from a contact: a tight dark core within a wide soft
    penumbra (the core's blur is a quarter of the penumbra's), as coverage 0-255."""
    core = _blurred(rect, paint, max(1.0, sigma * 0.25)).astype(np.float32) / 255.0
    wide = _blurred(rect, paint, sigma).astype(np.float32) / 255.0
    return (1.0 - (1.0 - core) * (1.0 - 0.6 * wide)) * 255.0


def shadow_map(
    canvas_shape: tuple[int, int],
    a: np.ndarray,
    offset: tuple[int, int],
    shadow: Shadow,
    align: str = "bottom",
) -> tuple[np.ndarray, Rect]:
    """Shadow opacity (uint8) over the rectangle it covers: contact, drop and floating
    shadows of the product placed (alpha ``a``) at ``offset`` on a canvas aligned ``align``.
    Returns (opacity, rect); an empty rect when there is no shadow."""
    ch, cw = canvas_shape
    x, y = offset
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    w = a.shape[1]
    short = min(ch, cw)
    ax, ay = shadow.away
    base, touch = _footprint(a)
    layers: list[tuple[Rect, np.ndarray]] = []

    def add(shape: tuple[Rect, Callable[[float, Rect], np.ndarray]] | None, sigma: float,
            opacity: float, contact: bool = False) -> None:  # fmt: skip
        if shape is None:
            return
        rect, paint = shape
        layer = _falloff(rect, paint, sigma) if contact else _blurred(rect, paint, sigma)
        layers.append((rect, layer * opacity))

    footprint = shadow.footprint
    if footprint == "auto":
        footprint = "base" if align == "bottom" else "outline"
    if shadow.contact_opacity > 0 and base >= 0:
        sigma = max(1.0, w * shadow.contact_blur)
        if footprint == "base":
            cols = np.flatnonzero(touch > 0.3)
            width = float(np.ptp(cols)) + 1 if cols.size else float(w)
            half_h = max(2.0, width * shadow.contact_height * 0.5)
            lean = round(ax * sigma * 0.5)
            add(_band(touch, x + lean, y + base, half_h, sigma, ch, cw), sigma,
                shadow.contact_opacity, contact=True)  # fmt: skip
        else:
            sigma *= 0.5
            at = (x + ax * sigma * 0.4, y + ay * sigma * 0.4)
            add(_silhouette(a, at, sigma, ch, cw), sigma, shadow.contact_opacity, contact=True)
    if shadow.drop_opacity > 0:
        distance = shadow.drop_distance * short
        at = (x + ax * distance, y + ay * distance)
        sigma = max(1.0, short * shadow.drop_blur)
        add(_silhouette(a, at, sigma, ch, cw), sigma, shadow.drop_opacity)
    if shadow.float_opacity > 0 and base >= 0:
        sigma = max(1.0, short * shadow.float_blur)
        lift = shadow.float_lift * ch
        if align == "bottom":
            # The floor under a hovering piece is shaded by how much of it is above each
            # column (a fine chain blocks little light), its ends drawn in: a light wider
            # than a point shrinks a shadow's core.
            mass = np.sqrt(a.astype(np.float32).sum(axis=0) / max(1.0, float(a.sum(axis=0).max())))
            cols = np.flatnonzero(mass > 0)
            half = max(2.0, (cols[-1] - cols[0] + 1) * 0.45)
            profile = ndimage.grey_opening(mass, size=max(1, round(w * 0.04)))
            profile = ndimage.minimum_filter1d(profile, max(1, round(w * 0.08)))
            half_h = max(2.0, 2 * half * shadow.contact_height * 0.6)
            floor = y + base + round(lift)
            add(_band(profile, x + round(ax * lift * 0.5), floor, half_h, sigma, ch, cw), sigma,
                shadow.float_opacity)  # fmt: skip
        else:
            at = (x + ax * lift, y + ay * lift)
            add(_silhouette(a, at, sigma, ch, cw), sigma, shadow.float_opacity)
    if not layers:
        return np.zeros((0, 0), np.uint8), (0, 0, 0, 0)
    top = min(r[0] for r, _ in layers)
    left = min(r[1] for r, _ in layers)
    bottom = max(r[2] for r, _ in layers)
    right = max(r[3] for r, _ in layers)
    # Shadows overlap as light blocked twice: 1 - (1 - a)(1 - b).
    clear = np.ones((bottom - top, right - left), np.float32)
    for (t, lft, b, rgt), layer in layers:
        view = clear[t - top : b - top, lft - left : rgt - left]
        view *= 1.0 - layer / 255.0
    return np.clip((1.0 - clear) * 255.0 + 0.5, 0, 255).astype(np.uint8), (top, left, bottom, right)


def reflection_map(
    fg: np.ndarray, offset: tuple[int, int], canvas_shape: tuple[int, int], shadow: Shadow
) -> tuple[np.ndarray, Rect]:
    """The product (RGBA ``fg`` at ``offset``) mirrored in a glossy floor at its base,
    fading with distance: (RGBA uint8, rect); empty when there is none."""
    ch, cw = canvas_shape
    x, y = offset
    base, _ = _footprint(fg[..., 3])
    if shadow.reflection_opacity <= 0 or base < 0:
        return np.zeros((0, 0, 4), np.uint8), (0, 0, 0, 0)
    span = max(2, round(shadow.reflection_fade * (base + 1)))
    rows = min(span, base + 1, ch - (y + base + 1))
    if rows <= 0:
        return np.zeros((0, 0, 4), np.uint8), (0, 0, 0, 0)
    mirrored = fg[base - rows + 1 : base + 1][::-1].astype(np.float32)
    fade = (1.0 - np.arange(rows, dtype=np.float32) / span) ** 2 * shadow.reflection_opacity
    alpha = mirrored[..., 3] / 255.0 * fade[:, None]
    premultiplied = np.dstack([mirrored[..., :3] * alpha[..., None], alpha])
    sigma = shadow.reflection_blur * min(ch, cw)
    if sigma >= 0.5:
        premultiplied = ndimage.gaussian_filter(premultiplied, (sigma, sigma, 0), mode="constant")
    a = premultiplied[..., 3:]
    rgb = np.where(a > 1e-4, premultiplied[..., :3] / np.maximum(a, 1e-4), 0.0)
    out = np.dstack([rgb, a * 255.0])
    rect = _clip((y + base + 1, x, y + base + 1 + rows, x + fg.shape[1]), ch, cw)
    out = out[rect[0] - (y + base + 1) : rect[2] - (y + base + 1), rect[1] - x : rect[3] - x]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), rect


def _clip(rect: tuple[float, float, float, float], ch: int, cw: int) -> Rect:
    t, left, b, right = rect
    return max(0, int(t)), max(0, int(left)), min(ch, int(np.ceil(b))), min(cw, int(np.ceil(right)))


@dataclass(frozen=True)
class Layout:
    """Where a composite's product and its shadow landed on the canvas: what a channel's
    rules measure (the product's extent, the background left untouched)."""

    canvas: tuple[int, int]  # height, width
    product: np.ndarray  # the product's alpha (uint8) over ``product_rect``
    product_rect: Rect
    product_rgb: np.ndarray  # its straight colour there: the photo's, resampled to fit
    shadow: np.ndarray  # the shadow's opacity (uint8) over ``shadow_rect``
    shadow_rect: Rect
    reflection: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    reflection_rect: Rect = (0, 0, 0, 0)  # where the reflection's alpha (uint8) lies

    def covered(self) -> np.ndarray:
        """Canvas-sized: True where the product, its shadow or its reflection touches the
        background."""
        out = np.zeros(self.canvas, bool)
        for layer, (t, left, b, r) in ((self.shadow, self.shadow_rect),
                                       (self.reflection, self.reflection_rect),
                                       (self.product, self.product_rect)):  # fmt: skip
            if layer.size:
                out[t:b, left:r] |= layer > 0
        return out

    def product_box(self, threshold: int = 13) -> Rect | None:
        """(top, left, bottom, right) of the product's pixels above ``threshold`` (5 %)."""
        if not (self.product > threshold).any():
            return None
        t, left, b, r = subject_bbox(self.product, threshold)
        top, lft = self.product_rect[0], self.product_rect[1]
        return top + t, lft + left, top + b, lft + r


def composite(
    background: np.ndarray,
    rgb: np.ndarray,
    alpha: np.ndarray,
    frame: Frame,
    shadow: Shadow,
    shadow_colour: tuple[int, int, int] = (20, 18, 16),
    prepared: Image.Image | None = None,
) -> tuple[np.ndarray, Layout]:
    """The product framed on ``background`` (H x W x 3 uint8) with its shadow: the RGB
    uint8 composite, and where the product and its shadow landed."""
    canvas_shape = background.shape[:2]
    ch, cw = canvas_shape
    fg, (x, y) = place(rgb, alpha, frame, prepared)
    opacity, srect = shadow_map(canvas_shape, fg[..., 3], (x, y), shadow, frame.align)
    mirror, rrect = (
        reflection_map(fg, (x, y), canvas_shape, shadow)
        if frame.align == "bottom"
        else (np.zeros((0, 0, 4), np.uint8), (0, 0, 0, 0))
    )
    prect = _clip((y, x, y + fg.shape[0], x + fg.shape[1]), ch, cw)
    visible = fg[prect[0] - y : prect[2] - y, prect[1] - x : prect[3] - x]
    layout = Layout(
        (ch, cw), visible[..., 3], prect, visible[..., :3], opacity, srect, mirror[..., 3], rrect
    )
    rects = [r for r in (srect, rrect, prect) if r[2] > r[0] and r[3] > r[1]]
    out = background.copy()
    if not rects:
        return out, layout
    # Only the rectangle the shadow, reflection and product cover is blended: the floor's
    # reflection first, the shadows over it, the product on top.
    top, left = min(r[0] for r in rects), min(r[1] for r in rects)
    bottom, right = max(r[2] for r in rects), max(r[3] for r in rects)
    patch = Image.fromarray(background[top:bottom, left:right]).convert("RGBA")
    if mirror.size:
        patch.alpha_composite(Image.fromarray(mirror, "RGBA"), (rrect[1] - left, rrect[0] - top))
    if opacity.size:
        layer = Image.new("RGBA", (srect[3] - srect[1], srect[2] - srect[0]), (*shadow_colour, 0))
        layer.putalpha(Image.fromarray(opacity, "L"))
        patch.alpha_composite(layer, (srect[1] - left, srect[0] - top))
    product = Image.fromarray(fg, "RGBA")
    # Parts outside the canvas (a product wider than its padding allows) are clipped.
    product = product.crop((prect[1] - x, prect[0] - y, prect[3] - x, prect[2] - y))
    patch.alpha_composite(product, (prect[1] - left, prect[0] - top))
    out[top:bottom, left:right] = np.asarray(patch.convert("RGB"))
    return out, layout


def framed_cutout(rgb: np.ndarray, alpha: np.ndarray, frame: Frame) -> bytes:
    """The subject placed on a transparent canvas exactly where ``composite`` will put it."""
    fg, (x, y) = place(rgb, alpha, frame)
    canvas = Image.new("RGBA", (frame.canvas_w, frame.canvas_h), (0, 0, 0, 0))
    canvas.paste(Image.fromarray(fg, "RGBA"), (x, y))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
