"""Sample product photos made from scratch: a ring, a watch, a pendant, a necklace laid
flat and hoop earrings, on studio paper.

They exist so a newcomer sees real composites without a photo of their own. Each is shaded
from a height field (rounded metal, glass-like gems), photographed on a light backdrop with
its own soft shadow, lens vignetting and sensor noise, then JPEG-encoded like a camera would.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Canvas = tuple[np.ndarray, np.ndarray]  # (H x W x 3 float colour, H x W float coverage)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy / size, xx / size


def _shade(
    mask: np.ndarray, base: tuple[int, int, int], shine: float, roundness: float
) -> np.ndarray:
    """Lambert + Phong on a height field rising from the mask's edge."""
    dist = ndimage.distance_transform_edt(mask)
    height = np.sqrt(np.clip(dist / max(roundness, 1.0), 0, 1)) * roundness
    gy, gx = np.gradient(ndimage.gaussian_filter(height, 1.5))
    normal = np.dstack([-gx, -gy, np.ones_like(gx)])
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    light = np.array([-0.45, -0.6, 0.66], dtype=np.float32)
    light /= np.linalg.norm(light)
    lambert = np.clip((normal * light).sum(axis=2), 0, 1)
    half = light + np.array([0, 0, 1], dtype=np.float32)
    half /= np.linalg.norm(half)
    spec = np.clip((normal * half).sum(axis=2), 0, 1) ** 40 * shine
    colour = np.asarray(base, np.float32) * (0.35 + 0.75 * lambert)[..., None]
    return np.clip(colour + 255 * spec[..., None], 0, 255)


def _over(canvas: Canvas, layer: np.ndarray, mask: np.ndarray) -> None:
    colour, cover = canvas
    a = ndimage.gaussian_filter(mask.astype(np.float32), 0.8)
    colour[:] = layer * a[..., None] + colour * (1 - a[..., None])
    cover[:] = np.maximum(cover, a)


def _ellipse(
    yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float
) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _ring(size: int) -> Canvas:
    yy, xx = _grid(size)
    canvas: Canvas = (np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    band = _ellipse(yy, xx, 0.60, 0.5, 0.20, 0.30) & ~_ellipse(yy, xx, 0.62, 0.5, 0.14, 0.235)
    _over(canvas, _shade(band, (222, 172, 72), 0.9, size * 0.02), band)
    gem = _ellipse(yy, xx, 0.37, 0.5, 0.085, 0.085)
    setting = _ellipse(yy, xx, 0.42, 0.5, 0.05, 0.11)
    _over(canvas, _shade(setting, (225, 180, 80), 0.8, size * 0.015), setting)
    facets = (np.sin(xx * 90) * np.sin(yy * 90) > 0).astype(np.float32)
    gem_colour = _shade(gem, (70, 120, 230), 1.2, size * 0.05) * (0.85 + 0.15 * facets[..., None])
    _over(canvas, gem_colour, gem)
    return canvas


def _watch(size: int) -> Canvas:
    yy, xx = _grid(size)
    canvas: Canvas = (np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    strap = (np.abs(xx - 0.5) < 0.13) & (yy > 0.06) & (yy < 0.94)
    stitches = (np.abs(np.abs(xx - 0.5) - 0.11) < 0.004) & (np.sin(yy * 260) > 0)
    leather = _shade(strap, (92, 55, 32), 0.15, size * 0.02)
    leather[stitches] = (200, 180, 150)
    _over(canvas, leather, strap)
    case = _ellipse(yy, xx, 0.5, 0.5, 0.25, 0.25)
    crown = (np.abs(yy - 0.5) < 0.03) & (xx > 0.74) & (xx < 0.78)
    _over(canvas, _shade(case | crown, (200, 202, 208), 1.0, size * 0.03), case | crown)
    dial = _ellipse(yy, xx, 0.5, 0.5, 0.205, 0.205)
    dial_colour = np.broadcast_to(np.array([24, 34, 52], np.float32), (size, size, 3)).copy()
    ang = np.arctan2(yy - 0.5, xx - 0.5)
    r = np.hypot(yy - 0.5, xx - 0.5)
    ticks = (r > 0.16) & (r < 0.195) & (np.abs(((ang / (np.pi / 6)) + 0.5) % 1 - 0.5) < 0.08)
    dial_colour[ticks] = (235, 235, 230)
    hour = (np.abs((yy - 0.5) * np.cos(0.9) - (xx - 0.5) * np.sin(0.9)) < 0.008) & (r < 0.11)
    minute = (np.abs(xx - 0.5) < 0.006) & (yy < 0.5) & (r < 0.17)
    dial_colour[
        (hour | minute) & ((yy - 0.5) * np.cos(0.9) + (xx - 0.5) * np.sin(0.9) <= 0.01) | minute
    ] = (245, 245, 240)
    _over(canvas, dial_colour, dial)
    return canvas


def _pendant(size: int) -> Canvas:
    yy, xx = _grid(size)
    canvas: Canvas = (np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    # The chain hangs from the top corners to the bail: a parabola drawn as a thick line.
    xs = np.linspace(0.2, 0.8, 200)
    ys = 0.08 + 0.455 * (1 - ((xs - 0.5) / 0.3) ** 2)
    line = Image.new("L", (size, size), 0)
    ImageDraw.Draw(line).line(
        [(float(x * size), float(y * size)) for x, y in zip(xs, ys, strict=True)],
        fill=255,
        width=max(2, size // 120),
        joint="curve",
    )
    chain = np.asarray(line) > 127
    _over(canvas, _shade(chain, (215, 215, 220), 1.0, size * 0.004), chain)
    drop_y = (yy - 0.72) / 0.17
    width = 0.11 * np.sqrt(np.clip(1 - drop_y**2, 0, 1)) * (1 + 0.6 * np.clip(drop_y, 0, 1))
    drop = (np.abs(xx - 0.5) < width) & (np.abs(drop_y) <= 1)
    bail = _ellipse(yy, xx, 0.535, 0.5, 0.02, 0.015)
    _over(canvas, _shade(bail, (215, 215, 220), 1.0, size * 0.006), bail)
    _over(canvas, _shade(drop, (170, 20, 60), 1.3, size * 0.06), drop)
    return canvas


def _polyline(size: int, points: list[tuple[float, float]], width: float) -> np.ndarray:
    """A thin wire or chain along ``points`` (fractions of the frame), ``width`` px wide."""
    line = Image.new("L", (size * 2, size * 2), 0)  # drawn at twice the size: smooth edges
    ImageDraw.Draw(line).line(
        [(x * size * 2, y * size * 2) for x, y in points],
        fill=255,
        width=max(2, round(width * 2)),
        joint="curve",
    )
    small = line.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, np.float32) / 255.0 > 0.5


def _necklace(size: int) -> Canvas:
    """A gold chain necklace laid flat in a loop, with a small emerald drop: the inside of
    the loop is backdrop, the chain is a few pixels wide."""
    yy, xx = _grid(size)
    canvas: Canvas = (np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    t = np.linspace(0, 2 * np.pi, 400)
    loop = [(0.5 + 0.33 * np.sin(a), 0.45 - 0.3 * np.cos(a) * (1 + 0.15 * np.cos(a))) for a in t]
    chain = _polyline(size, loop, max(2.0, size / 300))
    links = np.sin((xx + yy) * size * 0.9) > -0.2  # links catch the light in turn
    gold = _shade(chain, (214, 168, 66), 1.0, size * 0.003) * (0.8 + 0.2 * links[..., None])
    _over(canvas, gold, chain)
    drop = _ellipse(yy, xx, 0.745, 0.5, 0.045, 0.03)  # hangs from the loop's lowest link
    _over(canvas, _shade(drop, (20, 140, 80), 1.3, size * 0.03), drop)
    return canvas


def _hoops(size: int) -> Canvas:
    """A pair of thin gold hoop earrings with their ear wires."""
    canvas: Canvas = (np.zeros((size, size, 3), np.float32), np.zeros((size, size), np.float32))
    t = np.linspace(0, 2 * np.pi, 360)
    for cx in (0.3, 0.7):
        ring = [(cx + 0.17 * np.cos(a), 0.55 + 0.17 * np.sin(a)) for a in t]
        wire = _polyline(size, ring, max(2.0, size / 200))
        hook = _polyline(size, [(cx, 0.38), (cx, 0.3), (cx + 0.03, 0.26)], max(2.0, size / 260))
        metal = wire | hook
        _over(canvas, _shade(metal, (220, 175, 80), 1.0, size * 0.004), metal)
    return canvas


PRODUCTS: dict[str, tuple[str, Callable[[int], Canvas]]] = {
    "RING-0001": ("Sapphire solitaire ring", _ring),
    "WATCH-0002": ("Steel watch with leather strap", _watch),
    "PENDANT-0003": ("Ruby drop pendant", _pendant),
    "NECKLACE-0004": ("Gold chain necklace with emerald drop", _necklace),
    "HOOPS-0005": ("Gold hoop earrings", _hoops),
}


def render_sample(sku: str, size: int = 1400, seed: int = 0) -> bytes:
    """A JPEG 'photo' of one sample product, deterministic for (sku, size, seed)."""
    _title, draw = PRODUCTS[sku]
    rng = np.random.default_rng(seed + sum(map(ord, sku)))
    colour, cover = draw(size)
    yy, xx = _grid(size)
    paper = np.array([238, 236, 232], np.float32) - 18 * yy[..., None]
    rows = np.flatnonzero(cover.max(axis=1) > 0.5)
    base = rows[-1] / size if rows.size else 0.9
    shadow = ndimage.gaussian_filter(
        _ellipse(yy, xx, base, 0.52, 0.03, 0.28).astype(np.float32), size * 0.02
    )
    cast = ndimage.gaussian_filter(np.roll(cover, (size // 40, size // 50), (0, 1)), size * 0.012)
    backdrop = paper * (1 - 0.35 * np.maximum(shadow, cast * 0.6))[..., None]
    img = colour * cover[..., None] + backdrop * (1 - cover[..., None])
    r2 = (yy - 0.5) ** 2 + (xx - 0.5) ** 2
    img *= (1 - 0.18 * r2 / 0.5)[..., None]
    img += rng.normal(0, 2.2, img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()
