"""The imaging core as three calls the assets (and the benchmarks) share.

cut_out:   source bytes -> mask + measurements
background: theme -> background image
render:    source + mask + background + theme -> encoded composite
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgpipe_assets.imaging import background as bg
from imgpipe_assets.imaging.compose import composite, subject_bbox
from imgpipe_assets.imaging.decode import MAX_PIXELS, decode_rgba
from imgpipe_assets.imaging.encode import CONTENT_TYPES, encode, encode_mask
from imgpipe_assets.imaging.segment import Segmenter
from imgpipe_assets.themes import Theme


@dataclass(frozen=True)
class Cutout:
    rgb: np.ndarray
    alpha: np.ndarray  # float32 [0, 1]
    mask_png: bytes
    coverage: float  # fraction of the frame that is subject
    bbox: tuple[int, int, int, int]  # top, left, bottom, right
    touches_edge: bool
    width: int
    height: int
    model: str
    cost_usd: float = 0.0
    prediction_id: str | None = None


def measure(alpha: np.ndarray) -> tuple[float, tuple[int, int, int, int], bool]:
    solid = alpha >= 0.5
    coverage = float(solid.mean())
    bbox = subject_bbox(alpha, threshold=0.5)
    h, w = alpha.shape
    touches = bool(
        coverage > 0
        and (solid[0].any() or solid[-1].any() or solid[:, 0].any() or solid[:, -1].any())
    )
    return coverage, bbox, touches if h and w else False


def cut_out(data: bytes, segmenter: Segmenter, max_pixels: int = MAX_PIXELS) -> Cutout:
    """Decode and segment; an image that already has transparency keeps its own alpha."""
    rgb, own_alpha = decode_rgba(data, max_pixels)
    if own_alpha is not None:
        return cutout_from_alpha(rgb, own_alpha.astype(np.float32) / 255.0, "source-alpha")
    return cutout_from_alpha(rgb, segmenter.predict(rgb), segmenter.name)


def cutout_from_alpha(
    rgb: np.ndarray,
    alpha: np.ndarray,
    model: str,
    cost_usd: float = 0.0,
    prediction_id: str | None = None,
) -> Cutout:
    """Measure and encode a cut-out whose alpha came from anywhere (model, file, provider)."""
    coverage, bbox, touches = measure(alpha)
    return Cutout(
        rgb=rgb,
        alpha=alpha,
        mask_png=encode_mask(alpha),
        coverage=coverage,
        bbox=bbox,
        touches_edge=touches,
        width=rgb.shape[1],
        height=rgb.shape[0],
        model=model,
        cost_usd=cost_usd,
        prediction_id=prediction_id,
    )


def background(theme: Theme) -> np.ndarray:
    w, h = theme.canvas
    return bg.render(theme.background, w, h, seed=theme.seed)


@dataclass(frozen=True)
class Rendered:
    data: bytes
    content_type: str
    image: np.ndarray


def render(rgb: np.ndarray, alpha: np.ndarray, backdrop: np.ndarray, theme: Theme) -> Rendered:
    out = composite(backdrop, rgb, alpha, theme.frame, theme.shadow)
    return Rendered(
        data=encode(out, theme.output_format, theme.quality),
        content_type=CONTENT_TYPES[theme.output_format],
        image=out,
    )


def on_grey(rgb: np.ndarray, alpha: np.ndarray, grey: int = 200) -> np.ndarray:
    """The cut-out over neutral grey: how a person checks a mask at a glance."""
    a = alpha[..., None]
    return np.clip(rgb * a + grey * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)
