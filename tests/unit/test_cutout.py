"""Cut-outs: edge refinement, colour decontamination, cropping and the stored format."""

import io

import numpy as np
import pytest
from PIL import Image

from imgpipe_assets.imaging import gates
from imgpipe_assets.imaging.matting import decontaminate, refine_alpha
from imgpipe_assets.imaging.pipeline import (
    cut_out,
    cutout_from_alpha,
    frame_alpha,
    load_cutout,
    render_all,
    work_size,
)
from imgpipe_assets.imaging.segment import BorderColour
from imgpipe_assets.themes import Theme


def disc(size: int = 200, radius: float = 60.0, soft: float = 3.0) -> np.ndarray:
    """A disc's true coverage with a soft edge ``soft`` pixels wide."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip((radius - r) / soft + 0.5, 0.0, 1.0).astype(np.float32)


def test_decontamination_removes_the_old_backdrop_from_the_edge() -> None:
    alpha = disc()
    product, backdrop = np.array([40, 180, 60], np.float32), np.array([230, 30, 30], np.float32)
    photo = alpha[..., None] * product + (1 - alpha[..., None]) * backdrop
    rgb = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
    band = (alpha > 0.1) & (alpha < 0.9)
    before = np.abs(rgb[band].astype(float) - product).mean()
    clean = decontaminate(rgb, alpha)
    after = np.abs(clean[band].astype(float) - product).mean()
    assert before > 40
    assert after < 6
    solid = alpha >= 0.999
    assert np.array_equal(clean[solid], rgb[solid])  # the product's body is untouched


def test_refinement_snaps_a_blurred_alpha_to_the_photos_edge() -> None:
    truth = disc(soft=1.0)
    photo = np.where(truth[..., None] > 0.5, (200, 170, 40), (245, 245, 245)).astype(np.uint8)
    # What a 320-pixel model looks like scaled up about six times.
    small = Image.fromarray(truth, "F").resize((34, 34), Image.Resampling.BILINEAR)
    coarse = np.asarray(small.resize((200, 200), Image.Resampling.BILINEAR), np.float32)
    refined = refine_alpha(photo, coarse, radius=9)
    band = (truth > 0.02) & (truth < 0.98) | (np.abs(coarse - truth) > 0.1)
    err_before = np.abs(coarse - truth)[band].mean()
    err_after = np.abs(refined - truth)[band].mean()
    assert err_after < err_before * 0.5


def test_cutout_is_cropped_stored_with_its_measurements_and_placed_back() -> None:
    rgb = np.full((300, 400, 3), 235, np.uint8)
    rgb[100:200, 150:250] = (40, 60, 160)
    cut = cut_out(_png(rgb), BorderColour())
    assert cut.width == 400 and cut.height == 300
    top, left, bottom, right = cut.crop
    assert 80 <= top < 100 and 130 <= left < 150 and 200 < bottom <= 220 and 250 < right <= 270
    assert cut.rgb.shape[:2] == cut.alpha.shape == (bottom - top, right - left)
    again = load_cutout(cut.png())
    assert again is not None
    assert again.crop == cut.crop and again.stats == cut.stats and again.model == cut.model
    assert np.abs(again.alpha - cut.alpha).max() <= 1 / 255 + 1e-6
    whole = frame_alpha(cut, 400, 300)
    assert whole[150, 200] > 0.9 and whole[10, 10] == 0.0


def test_an_older_plain_mask_is_not_mistaken_for_a_cutout() -> None:
    buf = io.BytesIO()
    Image.new("L", (8, 8), 255).save(buf, "PNG")
    assert load_cutout(buf.getvalue()) is None


def test_big_photos_are_cut_out_no_larger_than_the_themes_need() -> None:
    rgb = np.full((3000, 4000, 3), 235, np.uint8)
    rgb[500:2500, 1000:3000] = (40, 60, 160)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    cut = cut_out(buf.getvalue(), BorderColour(), work_px=1000)
    assert max(cut.rgb.shape[:2]) <= 1000
    assert (cut.width, cut.height) == (4000, 3000)


def test_work_size_is_the_largest_box_any_theme_fits_a_product_in() -> None:
    themes = [
        Theme("a", {"style": "solid"}, canvas=(2048, 2048), padding=0.12),
        Theme("b", {"style": "solid"}, canvas=(3000, 2000), padding=0.1),
    ]
    assert work_size(themes) == 2400
    assert work_size([Theme("c", {"style": "solid"}, canvas=(256, 256))]) == 1024


def test_every_theme_renders_with_its_smaller_copies() -> None:
    alpha = disc(120, 40)
    rgb = np.zeros((120, 120, 3), np.uint8)
    rgb[...] = (200, 30, 30)
    cut = cutout_from_alpha(rgb, alpha, "test")
    themes = [
        Theme("square", {"style": "solid"}, canvas=(300, 300), sizes=(100,)),
        Theme("wide", {"style": "solid", "colors": ["#000000"]}, canvas=(400, 200)),
    ]
    backdrops = {t.name: np.full((t.canvas[1], t.canvas[0], 3), 255, np.uint8) for t in themes}
    out = render_all(cut, themes, backdrops)
    assert out["square"].image.shape == (300, 300, 3)
    assert out["wide"].image.shape == (200, 400, 3)
    with Image.open(io.BytesIO(out["square"].variants[100])) as small:
        assert small.size == (100, 100)
    assert out["wide"].variants == {}


@pytest.mark.parametrize(("holes", "expected"), [(0, "pass"), (45, "review"), (64, "block")])
def test_hole_count_is_graded(holes: int, expected: str) -> None:
    alpha = np.zeros((400, 400), np.float32)
    alpha[20:380, 20:380] = 1.0
    for i in range(holes):
        y, x = 40 + (i // 8) * 40, 40 + (i % 8) * 40
        alpha[y : y + 10, x : x + 10] = 0.0
    (verdict,) = [v for v in gates.evaluate(alpha, 1000, 1000) if v.gate == "holes"]
    assert verdict.outcome == expected and verdict.value == holes


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_the_inside_of_a_ring_is_cut_out_too(needs_model, sample_photos: dict) -> None:  # type: ignore[no-untyped-def]
    from imgpipe_assets.imaging.segment import load_segmenter

    seg = load_segmenter(needs_model.parent, allow_fallback=False)
    cut = cut_out(sample_photos["RING-0001"].read_bytes(), seg, work_px=600)
    assert cut.stats.holes >= 1
    h, w = cut.alpha.shape
    # The middle of the band's opening, well below the stone: backdrop, so transparent.
    assert cut.alpha[int(h * 0.62), w // 2] < 0.05
    assert cut.alpha[int(h * 0.1), w // 2] > 0.95  # the stone
