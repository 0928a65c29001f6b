"""The contrast gate: a product hard to see on a theme's background waits for a person."""

import numpy as np
import pytest

from imgpipe_assets.imaging.contrast import (
    MIN_OUTLINE_CONTRAST,
    low_contrast_reason,
    outline_contrast,
    srgb_to_lab,
)


def _product(colour: tuple[int, int, int], ring: bool = False) -> tuple[np.ndarray, np.ndarray]:
    h, w = 400, 300
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = colour
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = (r < 120).astype(np.float32)
    if ring:  # a thin band: a wire ring, 6 px wide
        alpha *= r > 114
    return rgb, alpha


def _backdrop(colour: tuple[int, int, int]) -> np.ndarray:
    out = np.zeros((512, 512, 3), np.uint8)
    out[:] = colour
    return out


def test_lab_of_known_colours() -> None:
    lab = srgb_to_lab(np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0]], np.uint8))
    assert lab[0] == pytest.approx([100, 0, 0], abs=0.5)
    assert lab[1] == pytest.approx([0, 0, 0], abs=0.5)
    assert lab[2] == pytest.approx([53.2, 80.1, 67.2], abs=0.5)


def test_a_dark_product_on_a_dark_background_is_held_with_its_measure() -> None:
    rgb, alpha = _product((24, 24, 30))
    contrast = outline_contrast(rgb, alpha, _backdrop((16, 18, 26)))
    assert contrast < MIN_OUTLINE_CONTRAST
    reason = low_contrast_reason(contrast)
    assert reason and f"ΔE {contrast:.1f}" in reason


@pytest.mark.parametrize(
    ("colour", "ring", "backdrop"),
    [
        ((200, 160, 60), False, (250, 250, 250)),  # gold on white
        ((170, 172, 178), True, (250, 250, 250)),  # a thin silver ring on white
        ((24, 24, 30), False, (245, 240, 232)),  # the dark product on a light theme
    ],
)
def test_products_that_stand_out_pass(colour: tuple, ring: bool, backdrop: tuple) -> None:
    rgb, alpha = _product(colour, ring)
    assert low_contrast_reason(outline_contrast(rgb, alpha, _backdrop(backdrop))) is None


def test_the_threshold_is_the_limit() -> None:
    assert low_contrast_reason(MIN_OUTLINE_CONTRAST) is None
    assert low_contrast_reason(MIN_OUTLINE_CONTRAST - 0.1) is not None
