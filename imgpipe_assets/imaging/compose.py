"""Framing a cut-out on a canvas, casting its shadow, and blending it in.

All blending is in float32 on straight (unpremultiplied) colour: out = fg*a + bg*(1-a).
Shadows are painted on the background before the product, so they never darken it.
"""

from __future__ import annotations

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


def place(
    rgb: np.ndarray, alpha: np.ndarray, frame: Frame
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Crop to the subject, scale it to fit inside the padding, and return it with its offset."""
    top, left, bottom, right = subject_bbox(alpha)
    crop_rgb = rgb[top:bottom, left:right]
    crop_a = alpha[top:bottom, left:right]
    box_w = max(1, int(frame.canvas_w * (1 - 2 * frame.padding)))
    box_h = max(1, int(frame.canvas_h * (1 - 2 * frame.padding)))
    h, w = crop_a.shape
    scale = min(box_w / w, box_h / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    fg = np.asarray(Image.fromarray(crop_rgb).resize((new_w, new_h), resample), dtype=np.float32)
    a = np.asarray(
        Image.fromarray(crop_a.astype(np.float32), mode="F").resize((new_w, new_h), resample),
        dtype=np.float32,
    )
    x = (frame.canvas_w - new_w) // 2
    if frame.align == "bottom":
        y = frame.canvas_h - int(frame.canvas_h * frame.padding) - new_h
    else:
        y = (frame.canvas_h - new_h) // 2
    return fg, np.clip(a, 0.0, 1.0), (x, y)


def _paste_alpha(canvas_shape: tuple[int, int], a: np.ndarray, x: int, y: int) -> np.ndarray:
    full = np.zeros(canvas_shape, dtype=np.float32)
    h, w = a.shape
    y0, x0 = max(0, y), max(0, x)
    y1, x1 = min(canvas_shape[0], y + h), min(canvas_shape[1], x + w)
    if y1 > y0 and x1 > x0:
        full[y0:y1, x0:x1] = a[y0 - y : y1 - y, x0 - x : x1 - x]
    return full


def _blurred(
    canvas_shape: tuple[int, int], paint: Callable[[float], np.ndarray], sigma: float
) -> np.ndarray:
    """Blur a shape painted at reduced resolution, then scale it up: shadows are soft, so a
    quarter-size canvas loses nothing visible and costs a sixteenth of the work."""
    ch, cw = canvas_shape
    scale = min(1.0, max(0.125, 6.0 / max(sigma, 1e-6)))
    small = paint(scale)
    blurred = ndimage.gaussian_filter(small, max(0.5, sigma * scale), mode="constant")
    if scale == 1.0:
        return blurred
    return np.asarray(
        Image.fromarray(blurred.astype(np.float32), mode="F").resize(
            (cw, ch), Image.Resampling.BILINEAR
        ),
        dtype=np.float32,
    )


def shadow_map(
    canvas_shape: tuple[int, int], a: np.ndarray, offset: tuple[int, int], shadow: Shadow
) -> np.ndarray:
    """Shadow opacity per pixel in [0, 1]: a contact ellipse under the base plus a drop shadow."""
    ch, cw = canvas_shape
    x, y = offset
    h, w = a.shape
    out = np.zeros(canvas_shape, dtype=np.float32)
    if shadow.contact_opacity > 0:
        # The footprint: the subject's lowest rows, squashed into an ellipse under its base.
        rows = np.flatnonzero((a > 0.5).any(axis=1))
        if rows.size:
            base = y + int(rows[-1])
            foot = a[max(0, rows[-1] - max(2, h // 20)) : rows[-1] + 1].max(0) > 0.5
            cols = np.flatnonzero(foot)
            cx = x + (int(cols.mean()) if cols.size else w // 2)
            half_w = max(4.0, (float(np.ptp(cols)) if cols.size else w) * 0.55 + w * 0.05)
            half_h = max(2.0, w * shadow.contact_height * 0.5)

            def ellipse(scale: float) -> np.ndarray:
                sh, sw = max(1, round(ch * scale)), max(1, round(cw * scale))
                yy, xx = np.ogrid[0:sh, 0:sw]
                d = ((xx / scale - cx) / half_w) ** 2 + ((yy / scale - base) / half_h) ** 2
                return np.clip(1.0 - d, 0.0, 1.0).astype(np.float32)

            sigma = max(1.0, w * shadow.contact_blur)
            out = np.maximum(out, _blurred(canvas_shape, ellipse, sigma) * shadow.contact_opacity)
    if shadow.drop_opacity > 0:
        dx = int(shadow.drop_offset[0] * cw)
        dy = int(shadow.drop_offset[1] * ch)

        def silhouette(scale: float) -> np.ndarray:
            sh, sw = max(1, round(ch * scale)), max(1, round(cw * scale))
            small_a = a
            if scale != 1.0:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                small_a = np.asarray(
                    Image.fromarray(a, mode="F").resize(size, Image.Resampling.BILINEAR)
                )
            return _paste_alpha((sh, sw), small_a, round((x + dx) * scale), round((y + dy) * scale))

        sigma = max(1.0, min(ch, cw) * shadow.drop_blur)
        out = np.maximum(out, _blurred(canvas_shape, silhouette, sigma) * shadow.drop_opacity)
    return np.clip(out, 0.0, 1.0)


def composite(
    background: np.ndarray,
    rgb: np.ndarray,
    alpha: np.ndarray,
    frame: Frame,
    shadow: Shadow,
    shadow_colour: tuple[int, int, int] = (20, 18, 16),
) -> np.ndarray:
    """The product framed on ``background`` (H x W x 3 uint8) with its shadow; RGB uint8."""
    canvas_shape = background.shape[:2]
    fg, a, (x, y) = place(rgb, alpha, frame)
    out = background.astype(np.float32)
    s = shadow_map(canvas_shape, a, (x, y), shadow)
    out = out * (1.0 - s[..., None]) + np.asarray(shadow_colour, np.float32) * s[..., None]
    h, w = a.shape
    region = out[y : y + h, x : x + w]
    a3 = a[: region.shape[0], : region.shape[1], None]
    region[:] = fg[: region.shape[0], : region.shape[1]] * a3 + region * (1.0 - a3)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def framed_cutout(rgb: np.ndarray, alpha: np.ndarray, frame: Frame) -> bytes:
    """The subject placed on a transparent canvas exactly where ``composite`` will put it."""
    import io

    fg, a, (x, y) = place(rgb, alpha, frame)
    canvas = np.zeros((frame.canvas_h, frame.canvas_w, 4), np.uint8)
    h, w = a.shape
    region = canvas[max(0, y) : y + h, max(0, x) : x + w]
    region[..., :3] = np.clip(fg[: region.shape[0], : region.shape[1]] + 0.5, 0, 255)
    region[..., 3] = np.clip(a[: region.shape[0], : region.shape[1]] * 255 + 0.5, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(canvas, "RGBA").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
