"""Edge refinement and colour decontamination for cut-outs.

A segmentation model answers at 320 x 320; a shop image is 2048 px wide. Scaled up, the
model's alpha is a blurred outline that ignores the photo's real edges. Two steps make it
shop-grade:

- ``refine_alpha``: a colour-guided filter (He, Sun and Tang's guided image filter, computed
  on a reduced grid and applied at full size) lets the photo's own edges shape the alpha at
  the boundary, keeping it soft where the product really is translucent or fine.
- ``decontaminate``: at the boundary a pixel is a mix of product and backdrop. Composited
  as it is onto a new background, the old backdrop shows as a fringe (the commonest
  complaint about background removers). Solving the compositing equation with a local
  estimate of the backdrop recovers the product's own colour there.

Both work in float32 on the subject's crop only, with box filters from scipy.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def resize_float(
    x: np.ndarray,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """Bilinear resize of a float H x W array (or its ``box``, left/top/right/bottom) to
    (width, height), as float32."""
    image = Image.fromarray(np.ascontiguousarray(x, np.float32), "F")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR, box=box), dtype=np.float32)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    size = (2 * r + 1, 2 * r + 1) + ((1,) if x.ndim == 3 else ())
    return ndimage.uniform_filter(x, size=size, mode="reflect")


def _shrink(rgb: np.ndarray, factor: int) -> np.ndarray:
    if factor <= 1:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, w // factor), max(1, h // factor))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BOX))


def _band(alpha: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of the boundary band, where lo < alpha < hi."""
    rows, cols = np.nonzero((alpha > lo) & (alpha < hi))
    return rows, cols


class _Sampler:
    """Bilinear samples of coarse grids at a set of full-size pixels, weights computed once."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, factor: float, shape: tuple[int, int]):
        h, w = shape
        ys = np.clip((rows + 0.5) / factor - 0.5, 0, h - 1).astype(np.float32)
        xs = np.clip((cols + 0.5) / factor - 0.5, 0, w - 1).astype(np.float32)
        y0 = np.minimum(ys.astype(np.intp), h - 2 if h > 1 else 0)
        x0 = np.minimum(xs.astype(np.intp), w - 2 if w > 1 else 0)
        fy, fx = ys - y0, xs - x0
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        self._idx = [y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1]
        self._wts = [(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx]

    def __call__(self, grid: np.ndarray) -> np.ndarray:
        flat = grid.reshape(grid.shape[0] * grid.shape[1], -1)
        out = sum(flat[i] * w[:, None] for i, w in zip(self._idx, self._wts, strict=True))
        out = np.asarray(out, dtype=np.float32)
        return out[:, 0] if grid.ndim == 2 else out


def refine_alpha(
    rgb: np.ndarray, alpha: np.ndarray, radius: int, eps: float = 2e-4, grid: int = 0
) -> np.ndarray:
    """Guide ``alpha`` (float32 [0, 1], same size as ``rgb``) by the photo's colour edges.

    ``radius`` is the filter's reach in full-size pixels (about the blur of the scaled-up
    model alpha); ``eps`` how strongly flat colour areas are smoothed. The filter is fitted
    on a grid ``grid`` times coarser (default: radius / 3) and evaluated at full size only in
    the boundary band: far inside stays solid, far outside stays clear.
    """
    h, w = alpha.shape
    if h < 8 or w < 8:
        return alpha
    grid = grid or max(1, min(8, radius // 3))
    guide_small = _shrink(rgb, grid).astype(np.float32) / 255.0
    sh, sw = guide_small.shape[:2]
    p = resize_float(alpha, (sw, sh)) if grid > 1 else alpha.astype(np.float32)
    r = max(1, round(radius / grid))
    mean_i = _box(guide_small, r)
    mean_p = _box(p, r)
    cov_ip = _box(guide_small * p[..., None], r) - mean_i * mean_p[..., None]
    sigma = np.empty((sh, sw, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            v = _box(guide_small[..., i] * guide_small[..., j], r) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = v
            sigma[..., j, i] = v
    sigma += np.eye(3, dtype=np.float32) * eps
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=2)
    mean_a = _box(a, r)
    mean_b = _box(b, r)
    rows, cols = _band(alpha, 0.01, 0.99)
    if rows.size == 0:
        return alpha
    sample = _Sampler(rows, cols, w / sw, (sh, sw))
    guide = rgb[rows, cols].astype(np.float32) / 255.0
    q = (sample(mean_a) * guide).sum(axis=1) + sample(mean_b)
    out = alpha.astype(np.float32, copy=True)
    out[rows, cols] = np.clip(q, 0.0, 1.0)
    return out


def decontaminate(rgb: np.ndarray, alpha: np.ndarray, reach: int = 24) -> np.ndarray:
    """The product's own colour at its boundary (uint8 H x W x 3), backdrop colour removed.

    Where 0 < alpha < 1 the photo is I = a F + (1 - a) B. B is estimated as the mean of
    nearby clear backdrop, within ``reach`` pixels (wider where there is none that close);
    F is then solved for, and blended towards the mean of nearby solid product where alpha
    is too small for the solution to be trusted.
    """
    rows, cols = _band(alpha, 0.004, 0.996)
    if rows.size == 0:
        return rgb
    w = alpha.shape[1]
    factor = max(1, reach // 6)
    small = _shrink(rgb, factor).astype(np.float32)
    sh, sw = small.shape[:2]
    a_small = resize_float(alpha, (sw, sh)) if factor > 1 else alpha
    r = max(2, reach // factor)

    def local_mean(weight: np.ndarray) -> np.ndarray:
        num = _box(small * weight[..., None], r)
        den = _box(weight, r)
        wide_num = _box(small * weight[..., None], 4 * r)
        wide_den = _box(weight, 4 * r)
        total = max(float(weight.sum()), 1e-6)
        overall = (small * weight[..., None]).sum(axis=(0, 1)) / total
        near = num / np.maximum(den, 1e-6)[..., None]
        far = wide_num / np.maximum(wide_den, 1e-6)[..., None]
        fallback = np.where((wide_den > 1e-4)[..., None], far, overall)
        return np.where((den > 1e-3)[..., None], near, fallback).astype(np.float32)

    sample = _Sampler(rows, cols, w / sw, (sh, sw))
    backdrop = sample(local_mean((a_small < 0.05).astype(np.float32)))
    product = sample(local_mean((a_small > 0.95).astype(np.float32)))
    i = rgb[rows, cols].astype(np.float32)
    a = alpha[rows, cols][:, None]
    solved = (i - (1.0 - a) * backdrop) / np.maximum(a, 1e-3)
    trust = np.clip((a - 0.05) / 0.35, 0.0, 1.0)
    fg = solved * trust + product * (1.0 - trust)
    out = rgb.copy()
    out[rows, cols] = np.clip(fg + 0.5, 0, 255).astype(np.uint8)
    return out
