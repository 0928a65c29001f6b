"""Whether a product stands out from a theme's background: the contrast gate.

A person finds a product by its outline. So the measure is taken there: the colours just
inside the product's silhouette (a band a few per cent of its size wide, where alpha is
sure), each against the background's typical colour where the product sits, as CIE76
colour differences in Lab. The median of those is the outline's contrast: a dark lamp on a
midnight gradient scores a few units, a silver chain on white twenty or more, gold on white
forty. Below ``MIN_OUTLINE_CONTRAST`` the composite waits for a person.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

# Median CIE76 difference along the outline under which a product is hard to see.
MIN_OUTLINE_CONTRAST = 10.0
_SIDE = 256  # the measure is taken on the cut-out reduced to this long side


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) of 8-bit sRGB colours, any leading shape."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
         [0.0193339, 0.1191920, 0.9503041]]
    )  # fmt: skip
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def outline_contrast(rgb: np.ndarray, alpha: np.ndarray, backdrop: np.ndarray) -> float:
    """The median CIE76 difference between the product's outline colours (``rgb`` where
    ``alpha`` is sure, near its edge) and the background's median colour in the middle of
    ``backdrop``, where a framed product sits."""
    h, w = alpha.shape
    step = max(1, round(max(h, w) / _SIDE))
    a = alpha[::step, ::step]
    colours = rgb[::step, ::step]
    solid = a > 0.9
    if not solid.any():
        return 0.0
    # The band: sure product within a few per cent of the silhouette's size of its edge.
    size = max(2, round(0.04 * max(a.shape)))
    band = solid & ~ndimage.binary_erosion(solid, iterations=size, border_value=0)
    if not band.any():
        band = solid
    bh, bw = backdrop.shape[:2]
    middle = np.asarray(
        Image.fromarray(backdrop[bh // 5 : bh - bh // 5, bw // 5 : bw - bw // 5]).reduce(
            max(1, min(bh, bw) // 64)
        )
    )
    behind = np.median(srgb_to_lab(middle.reshape(-1, 3)), axis=0)
    outline = srgb_to_lab(colours[band])
    return float(np.median(np.linalg.norm(outline - behind, axis=1)))


def low_contrast_reason(contrast: float, minimum: float = MIN_OUTLINE_CONTRAST) -> str | None:
    """Why a composite is held for this contrast, if it is."""
    if contrast >= minimum:
        return None
    return (
        f"contrast: the product's outline differs from the background by ΔE {contrast:.1f} "
        f"(under {minimum:g}): it would be hard to see"
    )
