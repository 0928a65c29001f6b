"""Procedural theme backgrounds, deterministic for a given style, size and seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

STYLES = ("sweep", "gradient", "radial", "marble", "texture", "solid", "image")
SMOOTH_STEP = 4  # smooth fields are worked out on a grid this much coarser


def hex_rgb(colour: str | Sequence[int]) -> np.ndarray:
    if isinstance(colour, str):
        value = colour.lstrip("#")
        if len(value) != 6:
            raise ValueError(f"colour {colour!r} is not #rrggbb")
        return np.array([int(value[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float32)
    return np.array(list(colour)[:3], dtype=np.float32)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fbm(h: int, w: int, rng: np.random.Generator, cells: float, octaves: int) -> np.ndarray:
    """Fractal value noise, roughly in [-1, 1]: random grids of ``cells``, twice as many per
    octave, each half as strong, upsampled bicubically."""
    out = np.zeros((h, w), dtype=np.float32)
    amplitude, total = 1.0, 0.0
    for octave in range(octaves):
        n = max(2, int(cells * 2**octave))
        grid = rng.standard_normal((n, n)).astype(np.float32)
        out += amplitude * np.asarray(
            Image.fromarray(grid, mode="F").resize((w, h), Image.Resampling.BICUBIC),
            dtype=np.float32,
        )
        total += amplitude
        amplitude *= 0.5
    return out / total


def _marble(
    width: int, height: int, rng: np.random.Generator, scale: float, angle: float
) -> np.ndarray:
    """How much vein colour each pixel takes (0-1): marble as stone is made, a folded layer.

    Veins are the crests of a sine across the vein direction whose phase is bent by warped
    fractal noise (the folding), sharpened to a few pixels and varying in width and depth
    along their length; a softer halo follows the main veins, a finer network of hairline
    cracks (ridges of a second warped noise) fills some areas and a faint cloudiness the
    rest. Worked at half size above 1200 px (veins stay a few pixels wide) and scaled up.
    """
    step = 2 if max(width, height) > 1200 else 1
    h, w = -(-height // step), -(-width // step)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    reach = 0.09 * max(h, w)  # how far the folding moves the stone
    warp_y, warp_x = _fbm(h, w, rng, scale, 3), _fbm(h, w, rng, scale, 3)
    at = [yy + reach * warp_y, xx + reach * warp_x]

    def folded(field: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(field, at, order=1, mode="reflect")

    theta = np.deg2rad(angle)
    across = (xx * np.cos(theta) + yy * np.sin(theta)) / max(h, w)
    phase = across * scale * 1.1 + folded(_fbm(h, w, rng, scale * 0.6, 5)) * 0.8
    crest = np.clip(1.0 - np.abs(np.sin(phase * np.pi)), 0.0, 1.0)
    thickness = np.clip(0.5 + 0.75 * _fbm(h, w, rng, scale, 3), 0.0, 1.0)
    depth = np.clip(0.55 + 0.9 * _fbm(h, w, rng, scale * 0.7, 3), 0.0, 1.0)
    veins = crest ** (14.0 + 10.0 * thickness) * depth
    halo = ndimage.gaussian_filter(crest**6, 3.0) * depth
    cracks = folded(_fbm(h, w, rng, scale * 2.2, 6))
    cracks = (1.0 - np.abs(cracks) / (float(np.abs(cracks).max()) + 1e-6)) ** 60
    cracks *= np.clip(0.2 + _fbm(h, w, rng, scale, 3), 0.0, 1.0)
    cloud = _fbm(h, w, rng, scale * 0.6, 4) * 0.5 + 0.5
    t = np.clip(veins * 0.9 + halo * 0.3 + cracks * 0.4 + cloud * 0.22, 0.0, 1.0)
    if step > 1:
        t = np.asarray(
            Image.fromarray(t.astype(np.float32), "F").resize(
                (width, height), Image.Resampling.BICUBIC
            ),
            dtype=np.float32,
        )
    return np.clip(t, 0.0, 1.0)


def _grain(h: int, w: int, rng: np.random.Generator, amount: float) -> np.ndarray:
    # A little fine grain hides banding in smooth gradients once encoded as 8-bit JPEG.
    return rng.normal(0.0, amount, (h, w, 1)).astype(np.float32)


def render(style: Mapping[str, Any], width: int, height: int, seed: int = 0) -> np.ndarray:
    """Render an RGB uint8 background.

    ``style`` keys: ``style`` (one of STYLES), ``colors`` (one to three #rrggbb), and
    style-specific knobs: ``horizon`` (sweep, 0-1 from the top), ``angle`` (gradient,
    degrees), ``vignette`` (0-1), ``texture_scale`` (veins across the canvas),
    ``texture_strength`` (0-1, how far veins go towards the second colour) and
    ``vein_angle`` (degrees) for marble,
    ``path``, ``blur`` and ``focus`` (image: a photo of the user's, cropped to fill).
    """
    kind = str(style.get("style", "solid"))
    if kind not in STYLES:
        raise ValueError(f"unknown background style {kind!r}; choose one of {STYLES}")
    colours = [hex_rgb(c) for c in style.get("colors", ["#ffffff"])] or [hex_rgb("#ffffff")]
    c0 = colours[0]
    c1 = colours[1] if len(colours) > 1 else c0
    c2 = colours[2] if len(colours) > 2 else c1
    if kind == "image":
        return _picture(style, width, height)
    rng = np.random.default_rng(seed)
    # Everything but marble's veins and the grain is smooth: worked out on a grid SMOOTH_STEP
    # times coarser, at the centres of its cells, and scaled up bicubically.
    step = SMOOTH_STEP if min(width, height) >= 16 * SMOOTH_STEP else 1
    sh, sw = -(-height // step), -(-width // step)
    ny = (((np.arange(sh, dtype=np.float32) + 0.5) * step - 0.5) / max(height - 1, 1))[:, None]
    nx = (((np.arange(sw, dtype=np.float32) + 0.5) * step - 0.5) / max(width - 1, 1))[None, :]
    ny, nx = np.broadcast_arrays(ny, nx)

    veins = None
    if kind == "solid":
        img = np.broadcast_to(c0, (sh, sw, 3)).astype(np.float32)
    elif kind == "sweep":
        # A studio paper sweep: wall colour above the horizon, curving into a lit floor.
        horizon = float(style.get("horizon", 0.62))
        t = _smoothstep((ny - (horizon - 0.18)) / 0.36)
        img = _mix(c1, c0, t)
        floor_light = np.exp(-(((nx - 0.5) / 0.45) ** 2) - (((ny - 0.85) / 0.35) ** 2))
        img = _mix(img, np.minimum(c0 * 1.04, 255), floor_light * 0.5)
    elif kind == "gradient":
        angle = np.deg2rad(float(style.get("angle", 90.0)))
        proj = (nx - 0.5) * np.cos(angle) + (ny - 0.5) * np.sin(angle)
        t = _smoothstep(proj / (abs(np.cos(angle)) * 0.5 + abs(np.sin(angle)) * 0.5) * 0.5 + 0.5)
        img = (
            _mix(c0, c1, t)
            if len(colours) < 3
            else np.where((t < 0.5)[..., None], _mix(c0, c1, t * 2), _mix(c1, c2, t * 2 - 1))
        )
    elif kind == "radial":
        r = np.sqrt(((nx - 0.5) / 0.7) ** 2 + ((ny - 0.45) / 0.7) ** 2)
        img = _mix(c0, c1, _smoothstep(r))
    else:  # marble ("texture" is its older name): veins of the second colour on the first
        scale = float(style.get("texture_scale", 3.0))
        strength = float(style.get("texture_strength", 0.8))
        veins = _marble(width, height, rng, scale, float(style.get("vein_angle", 35.0)))
        veins *= strength
        img = np.ones((sh, sw, 3), np.float32)  # the vignette alone, applied below

    vignette = float(style.get("vignette", 0.0))
    if vignette > 0:
        r2 = ((nx - 0.5) ** 2 + (ny - 0.5) ** 2) * 2.0
        img = (img * (1.0 - vignette * _smoothstep(r2))[..., None]).astype(np.float32)
    if kind == "solid" and vignette <= 0:
        full = np.broadcast_to(c0, (height, width, 3)).astype(np.float32)
    else:
        full = _scaled_up(img, width, height, step)
    if veins is not None:
        full = _mix(c0, c1, veins) * full  # (img held only the vignette's shading)
    full = full + _grain(height, width, rng, float(style.get("grain", 1.2)))
    return np.clip(full + 0.5, 0, 255).astype(np.uint8)


def _scaled_up(small: np.ndarray, width: int, height: int, step: int) -> np.ndarray:
    """``small`` (sampled at the centres of ``step``-pixel cells) at full size, bicubic."""
    if step == 1:
        return np.ascontiguousarray(small, np.float32)
    box = (0.0, 0.0, width / step, height / step)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(small[..., c], np.float32), "F").resize(
                (width, height), Image.Resampling.BICUBIC, box=box
            ),
            dtype=np.float32,
        )
        for c in range(3)
    ]
    return np.dstack(channels)


def _picture(style: Mapping[str, Any], width: int, height: int) -> np.ndarray:
    """A photo of the user's as the background: made upright and sRGB, cropped to fill the
    canvas around ``focus`` ([x, y], 0-1, default the centre), optionally softened by
    ``blur`` (a fraction of the canvas's short side) so the product stands out."""
    from pathlib import Path

    from imgpipe_assets.imaging.decode import decode

    decoded = decode(Path(str(style["path"])).read_bytes(), min_long_side=max(width, height))
    im = Image.fromarray(decoded.rgb)
    fx, fy = (float(v) for v in style.get("focus", (0.5, 0.5)))
    scale = max(width / im.width, height / im.height)
    crop_w, crop_h = width / scale, height / scale
    left = min(max(0.0, fx * im.width - crop_w / 2), im.width - crop_w)
    top = min(max(0.0, fy * im.height - crop_h / 2), im.height - crop_h)
    im = im.resize(
        (width, height),
        Image.Resampling.LANCZOS,
        box=(left, top, left + crop_w, top + crop_h),
        reducing_gap=3.0,
    )
    blur = float(style.get("blur", 0.0))
    if blur > 0:
        im = im.filter(ImageFilter.GaussianBlur(blur * min(width, height)))
    img = np.asarray(im, dtype=np.float32)
    vignette = float(style.get("vignette", 0.0))
    if vignette > 0:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        r2 = ((xx / max(width - 1, 1) - 0.5) ** 2 + (yy / max(height - 1, 1) - 0.5) ** 2) * 2.0
        img = (img * (1.0 - vignette * _smoothstep(r2))[..., None]).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)
