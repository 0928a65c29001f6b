"""Framing a cut-out on a canvas, casting its shadow, and blending it in.

Blending is Porter-Duff "over" on 8-bit straight colour (Pillow's ``alpha_composite``, in
C): out = fg*a + bg*(1-a). The product is scaled premultiplied, so transparent pixels never
bleed colour into its edge. Shadows are painted on the background before the product, so
they never darken it, and only the rectangle they and the product touch is worked on.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

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

    def fit_scale(self, width: int, height: int) -> float:
        """The scale that fits a ``width`` x ``height`` product inside the padding."""
        box_w = max(1, int(self.canvas_w * (1 - 2 * self.padding)))
        box_h = max(1, int(self.canvas_h * (1 - 2 * self.padding)))
        return min(box_w / width, box_h / height)


@dataclass(frozen=True)
class Shadow:
    contact_opacity: float = 0.35
    contact_blur: float = 0.035  # fraction of the subject's width
    contact_height: float = 0.06  # ellipse height as a fraction of the subject's width
    drop_opacity: float = 0.0
    drop_blur: float = 0.03  # fraction of the canvas's shorter side
    drop_offset: tuple[float, float] = (0.015, 0.02)  # fraction of the canvas (x, y)


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
        y = frame.canvas_h - int(frame.canvas_h * frame.padding) - new_h
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


def shadow_map(
    canvas_shape: tuple[int, int], a: np.ndarray, offset: tuple[int, int], shadow: Shadow
) -> tuple[np.ndarray, Rect]:
    """Shadow opacity (uint8) over the rectangle it covers: a contact ellipse under the base
    plus a drop shadow. Returns (opacity, rect); an empty rect when there is no shadow."""
    ch, cw = canvas_shape
    x, y = offset
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    h, w = a.shape
    layers: list[tuple[Rect, np.ndarray]] = []
    if shadow.contact_opacity > 0:
        # The footprint: the subject's lowest rows, squashed into an ellipse under its base.
        rows = np.flatnonzero((a > 127).any(axis=1))
        if rows.size:
            base = y + int(rows[-1])
            foot = a[max(0, rows[-1] - max(2, h // 20)) : rows[-1] + 1].max(0) > 127
            cols = np.flatnonzero(foot)
            cx = x + (int(cols.mean()) if cols.size else w // 2)
            half_w = max(4.0, (float(np.ptp(cols)) if cols.size else w) * 0.55 + w * 0.05)
            half_h = max(2.0, w * shadow.contact_height * 0.5)
            sigma = max(1.0, w * shadow.contact_blur)
            reach = 3 * sigma
            rect = _clip(
                (
                    base - half_h - reach,
                    cx - half_w - reach,
                    base + half_h + reach,
                    cx + half_w + reach,
                ),
                ch,
                cw,
            )

            def ellipse(scale: float, r: Rect) -> np.ndarray:
                t, left, b, right = r
                sh, sw = max(1, round((b - t) * scale)), max(1, round((right - left) * scale))
                yy, xx = np.ogrid[0:sh, 0:sw]
                d = ((xx / scale + left - cx) / half_w) ** 2 + (
                    (yy / scale + t - base) / half_h
                ) ** 2
                return np.clip(1.0 - d, 0.0, 1.0).astype(np.float32)

            if rect[2] > rect[0] and rect[3] > rect[1]:
                layers.append((rect, _blurred(rect, ellipse, sigma) * shadow.contact_opacity))
    if shadow.drop_opacity > 0:
        dx = int(shadow.drop_offset[0] * cw)
        dy = int(shadow.drop_offset[1] * ch)
        sigma = max(1.0, min(ch, cw) * shadow.drop_blur)
        reach = 3 * sigma
        rect = _clip(
            (y + dy - reach, x + dx - reach, y + dy + h + reach, x + dx + w + reach), ch, cw
        )

        def silhouette(scale: float, r: Rect) -> np.ndarray:
            t, left, b, right = r
            sh, sw = max(1, round((b - t) * scale)), max(1, round((right - left) * scale))
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small_a = np.asarray(
                Image.fromarray(a).resize(size, Image.Resampling.BILINEAR), np.float32
            )
            out = np.zeros((sh, sw), np.float32)
            py, px = round((y + dy - t) * scale), round((x + dx - left) * scale)
            y0, x0 = max(0, py), max(0, px)
            y1, x1 = min(sh, py + size[1]), min(sw, px + size[0])
            if y1 > y0 and x1 > x0:
                out[y0:y1, x0:x1] = small_a[y0 - py : y1 - py, x0 - px : x1 - px] / 255.0
            return out

        if rect[2] > rect[0] and rect[3] > rect[1]:
            layers.append((rect, _blurred(rect, silhouette, sigma) * shadow.drop_opacity))
    if not layers:
        return np.zeros((0, 0), np.uint8), (0, 0, 0, 0)
    top = min(r[0] for r, _ in layers)
    left = min(r[1] for r, _ in layers)
    bottom = max(r[2] for r, _ in layers)
    right = max(r[3] for r, _ in layers)
    out = np.zeros((bottom - top, right - left), np.float32)
    for (t, lft, b, rgt), layer in layers:
        view = out[t - top : b - top, lft - left : rgt - left]
        np.maximum(view, layer, out=view)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8), (top, left, bottom, right)


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

    def covered(self) -> np.ndarray:
        """Canvas-sized: True where the product or its shadow touches the background."""
        out = np.zeros(self.canvas, bool)
        for layer, (t, left, b, r) in ((self.shadow, self.shadow_rect),
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
    opacity, srect = shadow_map(canvas_shape, fg[..., 3], (x, y), shadow)
    prect = _clip((y, x, y + fg.shape[0], x + fg.shape[1]), ch, cw)
    visible = fg[prect[0] - y : prect[2] - y, prect[1] - x : prect[3] - x]
    layout = Layout((ch, cw), visible[..., 3], prect, visible[..., :3], opacity, srect)
    rects = [r for r in (srect, prect) if r[2] > r[0] and r[3] > r[1]]
    out = background.copy()
    if not rects:
        return out, layout
    # Only the rectangle the shadow and the product cover is blended.
    top, left = min(r[0] for r in rects), min(r[1] for r in rects)
    bottom, right = max(r[2] for r in rects), max(r[3] for r in rects)
    patch = Image.fromarray(background[top:bottom, left:right]).convert("RGBA")
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
