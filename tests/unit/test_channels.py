"""Channel presets and their rules, colour fidelity, and the limit on enlargement: each
rule on images built to pass and to fail by one pixel or one per cent."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgpipe_assets.errors import ChannelRuleBroken, InvalidThemeFile
from imgpipe_assets.imaging import channels, pipeline
from imgpipe_assets.imaging.channels import Rules, Shown, check, failures, parse_rules
from imgpipe_assets.imaging.compose import Layout
from imgpipe_assets.imaging.contrast import srgb_to_lab
from imgpipe_assets.imaging.encode import encode
from imgpipe_assets.imaging.fidelity import ciede2000, product_fidelity
from imgpipe_assets.imaging.pipeline import Cutout
from imgpipe_assets.stages.cutout import CutoutStage
from imgpipe_assets.stages.render import BackgroundStage, CompositeStage
from imgpipe_assets.themes import load_themes, presets
from imgpipe_resources.backgrounds import NoBackgroundGenerator
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.jobs import get_job
from imgpipe_resources.db.migrate import upgrade
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.publishing import ShopifyOutbox
from imgpipe_resources.segmentation import LocalSegmenter
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from imgpipe_resources.themes import ThemeLibrary
from tests.helpers import ROOT, ingest, make_settings, models_dir
from tests.icc import rgb_profile

WHITE = (255, 255, 255)


def _layout(h: int, w: int, box: tuple[int, int, int, int]) -> Layout:
    """A solid product over ``box`` (top, left, bottom, right) and no shadow."""
    t, left, b, r = box
    return Layout(
        (h, w),
        np.full((b - t, r - left), 255, np.uint8),
        box,
        np.zeros((b - t, r - left, 3), np.uint8),
        np.zeros((0, 0), np.uint8),
        (0, 0, 0, 0),
    )


def _canvas(h: int, w: int, box: tuple[int, int, int, int]) -> np.ndarray:
    out = np.full((h, w, 3), 255, np.uint8)
    t, left, b, r = box
    out[t:b, left:r] = (180, 140, 60)
    return out


def _shown(pixels: np.ndarray, fmt: str = "PNG") -> Shown:
    return Shown(fmt, "RGB", None, pixels)


def _broken(findings: list[channels.Finding]) -> dict[str, str]:
    return {f.rule: f.measured for f in failures(findings)}


# --- the rules, one by one ---------------------------------------------------------------


def test_a_pure_white_background_passes_and_one_pixel_off_fails() -> None:
    box = (100, 100, 900, 900)
    pixels, rules = _canvas(1000, 1000, box), Rules(background=WHITE)
    assert not _broken(check(_shown(pixels), _layout(1000, 1000, box), rules))
    pixels[5, 990] = (255, 254, 255)
    broken = _broken(check(_shown(pixels), _layout(1000, 1000, box), rules))
    assert broken == {"background": "1 px of the background are not #ffffff "
                      "(the worst (255, 254, 255) at x=990, y=5)"}  # fmt: skip


def test_jpeg_ringing_inside_the_products_blocks_is_allowed_but_not_a_block_further() -> None:
    box = (100, 100, 900, 900)  # on the 8 px grid: the block beside it is the background's
    layout, rules = _layout(1000, 1000, box), Rules(background=WHITE)
    shown = Shown.of(encode(_canvas(1000, 1000, box), "jpeg", 90))
    assert not _broken(check(shown, layout, rules))
    # Ringing stays in the blocks the product touches: a layout 3 px short is still fine,
    # one a whole block short leaves product pixels in a background block.
    assert not _broken(check(shown, _layout(1000, 1000, (100, 100, 900, 897)), rules))
    short = _layout(1000, 1000, (100, 100, 900, 888))
    assert "background" in _broken(check(shown, short, rules))


def test_the_fill_rule_holds_at_85_per_cent_and_fails_at_84() -> None:
    rules = Rules(fill=(0.85, 1.0))
    at_85 = _layout(1000, 1000, (300, 75, 700, 925))  # 850 px wide of 1000
    assert not _broken(check(_shown(_canvas(1000, 1000, (300, 75, 700, 925))), at_85, rules))
    at_84 = _layout(1000, 1000, (300, 80, 700, 920))
    broken = _broken(check(_shown(_canvas(1000, 1000, (300, 80, 700, 920))), at_84, rules))
    assert broken == {"fill": "the product spans 84.0 % of the frame (needs 85-100 %)"}
    # Google's band has a ceiling too: 91 % is too much.
    big = _layout(1000, 1000, (45, 45, 955, 955))
    broken = _broken(
        check(_shown(_canvas(1000, 1000, (45, 45, 955, 955))), big, Rules(fill=(0.75, 0.9)))
    )
    assert "91.0 %" in broken["fill"]


def test_a_clean_background_passes_with_gradients_and_grain_but_not_with_a_mark() -> None:
    box = (300, 300, 700, 700)
    yy = np.linspace(0, 60, 1000, dtype=np.float32)[:, None, None]
    rng = np.random.default_rng(1)
    pixels = np.clip(190 + yy + rng.normal(0, 1.5, (1000, 1000, 3)), 0, 255).astype(np.uint8)
    pixels[300:700, 300:700] = (20, 20, 20)  # the product's own hard edge does not count
    layout, rules = _layout(1000, 1000, box), Rules(clean_background=True)
    assert not _broken(check(_shown(pixels), layout, rules))
    marked = pixels.copy()
    marked[100, 150] = (30, 30, 30)  # one dark pixel: a speck of text
    assert "px of marks" in _broken(check(_shown(marked), layout, rules))["clean_background"]
    bordered = pixels.copy()
    bordered[:4] = (0, 0, 0)
    assert _broken(check(_shown(bordered), layout, rules)) == {
        "clean_background": "a border along the top edge"
    }


def test_frame_rules_fail_by_one_pixel() -> None:
    def frame(w: int, h: int, rules: Rules, fmt: str = "jpeg") -> dict[str, str]:
        return _broken(channels.frame_findings(rules, w, h, fmt))

    assert not frame(2048, 2048, Rules(size=(2048, 2048)))
    assert frame(2048, 2047, Rules(size=(2048, 2048))) == {
        "size": "2048 x 2047 px (needs 2048 x 2048)"
    }
    assert not frame(1600, 1200, Rules(min_long_side=1600))
    assert "1599" in frame(1599, 1200, Rules(min_long_side=1600))["min_long_side"]
    assert "799" in frame(1200, 799, Rules(min_short_side=800))["min_short_side"]
    ratios = Rules(aspect=("4:3", "5:4"), orientation="landscape")
    assert not frame(2000, 1500, ratios) and not frame(2000, 1600, ratios)
    assert set(frame(2000, 1520, ratios)) == {"aspect"}
    assert set(frame(1500, 2000, ratios)) == {"aspect", "orientation"}
    assert frame(1000, 1000, Rules(format="jpeg"), "png") == {"format": "png (needs jpeg)"}


def test_srgb_accepts_imgpipes_own_jpeg_and_refuses_a_wide_gamut_or_cmyk_one() -> None:
    pixels = _canvas(64, 64, (16, 16, 48, 48))
    rules, layout = Rules(srgb=True), _layout(64, 64, (16, 16, 48, 48))
    assert not _broken(check(Shown.of(encode(pixels, "jpeg")), layout, rules))
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", icc_profile=rgb_profile(name="Display P3"))
    assert "Display P3" in _broken(check(Shown.of(buf.getvalue()), layout, rules))["srgb"]
    buf = io.BytesIO()
    Image.fromarray(pixels).convert("CMYK").save(buf, "JPEG")
    assert _broken(check(Shown.of(buf.getvalue()), layout, rules)) == {
        "srgb": "CMYK pixels (needs RGB)"
    }


def test_rules_in_a_theme_file_are_checked_as_they_are_read() -> None:
    assert parse_rules({"fill": [0.75, 0.9], "aspect": "4:3"}).aspect == ("4:3",)
    for raw, says in (
        ({"fil": [0.8, 1]}, "unknown rule 'fil'"),
        ({"fill": [0.9, 0.8]}, "fill must be"),
        ({"background": "white"}, "'#rrggbb'"),
        ({"aspect": ["4x3"]}, "width:height"),
        ({"orientation": "tall"}, "orientation"),
        ({"min_long_side": "big"}, "whole number"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_rules(raw)


# --- presets in a theme file ---------------------------------------------------------------


def _themes(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "themes.yaml"
    path.write_text(text)
    return load_themes(path)


def test_a_theme_named_like_a_preset_starts_from_it_and_overrides_key_by_key(
    tmp_path: Path,
) -> None:
    themes = _themes(
        tmp_path,
        "themes:\n  amazon-main: {rules: {fill: [0.9, 1.0]}, output: {quality: 95}}\n"
        "  feed:\n    preset: google-shopping\n    canvas: [1000, 1000]\n",
    )
    amazon = themes["amazon-main"]
    assert amazon.preset == "amazon-main" and amazon.rules is not None
    assert amazon.rules.fill == (0.9, 1.0) and amazon.rules.background == WHITE  # kept
    assert amazon.quality == 95 and amazon.output_format == "jpeg" and amazon.canvas == (2000, 2000)
    assert themes["feed"].canvas == (1000, 1000) and themes["feed"].rules.min_short_side == 800  # type: ignore[union-attr]
    assert set(presets()) >= {"amazon-main", "google-shopping", "shopify-square", "etsy-landscape"}


def test_a_theme_that_breaks_its_own_frame_rules_is_refused_when_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidThemeFile, match=r"amazon-main.*min_long_side: long side 1500 px"):
        _themes(tmp_path, "themes:\n  amazon-main: {canvas: [1500, 1500]}\n")
    with pytest.raises(InvalidThemeFile, match="format: png"):
        _themes(tmp_path, "themes:\n  shopify-square: {output: {format: png}}\n")
    with pytest.raises(InvalidThemeFile, match="preset 'ebay' is not one of"):
        _themes(tmp_path, "themes:\n  x: {preset: ebay}\n")
    with pytest.raises(InvalidThemeFile, match="upscale must be"):
        _themes(tmp_path, "themes:\n  x: {upscale: stretch}\n")


def _cutout(size: int, product: int, rng_seed: int = 0) -> Cutout:
    """A textured gold disc of ``product`` px in a photo of ``size`` px, cut out exactly."""
    rng = np.random.default_rng(rng_seed)
    yy, xx = np.mgrid[0:product, 0:product]
    r = np.hypot(yy - product / 2 + 0.5, xx - product / 2 + 0.5)
    alpha = np.clip(product / 2 - r, 0, 1).astype(np.float32)
    rgb = np.clip(np.array([200, 160, 70]) + rng.normal(0, 6, (product, product, 3)), 0, 255)
    stats = pipeline.gates.Stats(**{f: 0.0 for f in pipeline.gates.Stats.__dataclass_fields__})
    stats = replace(stats, coverage=0.3)
    top = (size - product) // 2
    return Cutout(
        rgb.astype(np.uint8), alpha, size, size, (top, top, top + product, top + product),
        stats, "test",
    )  # fmt: skip


@pytest.mark.parametrize(
    "name", ["amazon-main", "google-shopping", "shopify-square", "etsy-landscape"]
)
def test_every_shipped_preset_renders_a_composite_that_passes_its_rules(
    tmp_path: Path, name: str
) -> None:
    theme = _themes(tmp_path, f"themes:\n  {name}: {{}}\n")[name]
    cut = _cutout(3000, 2200)  # a photo large enough for every preset
    size = pipeline.enlargement(cut, theme)
    assert not size.too_much
    out = pipeline.render(cut.rgb, cut.alpha, pipeline.background(theme), theme)
    findings = check(Shown.of(out.data), out.layout, theme.rules)  # type: ignore[arg-type]
    assert findings and not failures(findings), findings


# --- enlargement ---------------------------------------------------------------------------


def test_a_small_photo_is_drawn_at_its_own_resolution_not_enlarged(tmp_path: Path) -> None:
    theme = _themes(
        tmp_path,
        "themes:\n  look: {canvas: [1000, 1000], padding: 0.1}\n"
        "  held: {canvas: [1000, 1000], padding: 0.1, upscale: review}\n"
        "  loose: {canvas: [1000, 1000], padding: 0.1, max_upscale: 2}\n",
    )
    cut = _cutout(600, 400)  # the frame asks for 800 px: 2x the photo
    size = pipeline.enlargement(cut, theme["look"])
    assert size.too_much and round(size.needed, 2) == 2.0 and "drawn smaller" in str(size)
    out = pipeline.render(cut.rgb, cut.alpha, np.full((1000, 1000, 3), 255, np.uint8),
                          theme["look"], None, size.max_scale)  # fmt: skip
    top, left, bottom, right = out.layout.product_box()  # type: ignore[misc]
    assert right - left == 400 and bottom - top == 400  # the photo's own pixels, 1:1
    held = pipeline.enlargement(cut, theme["held"])
    assert held.max_scale == float("inf") and "enlarged 2.00x" in str(held.review_reason)
    assert not pipeline.enlargement(cut, theme["loose"]).too_much
    # A cut-out decoded at half size still has its photo's pixels behind it.
    halved = replace(cut, crop=(0, 0, 800, 800))
    assert not pipeline.enlargement(halved, theme["look"]).too_much


# --- colour fidelity -----------------------------------------------------------------------


def test_ciede2000_matches_the_published_reference_pairs() -> None:
    pairs = [  # Sharma, Wu and Dalal (2005), table 1
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
        ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
    ]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert np.allclose(ciede2000(a, b), [p[2] for p in pairs], atol=1e-4)
    assert np.allclose(ciede2000(b, a), [p[2] for p in pairs], atol=1e-4)  # symmetric


def test_fidelity_is_small_for_a_faithful_composite_and_large_for_a_colour_shift() -> None:
    cut = _cutout(1000, 600)
    theme = load_themes(ROOT / "imgpipe_assets" / "themes.yaml")["studio-white"]
    out = pipeline.render(
        cut.rgb, cut.alpha, pipeline.background(theme), replace(theme, quality=95)
    )
    shown = Shown.of(out.data).pixels
    faithful = product_fidelity(shown, out.layout)
    assert faithful is not None and faithful.mean < 1.0 and faithful.pixels > 10_000
    shifted = shown.copy()
    shifted[..., 2] = np.clip(shifted[..., 2].astype(int) + 12, 0, 255).astype(np.uint8)
    worse = product_fidelity(shifted, out.layout)
    assert worse is not None and worse.mean > faithful.mean + 1
    lab = srgb_to_lab(np.array([[255, 255, 255]], np.uint8))
    assert abs(lab[0, 0] - 100) < 0.01  # white is L* 100


# --- the composite stage -------------------------------------------------------------------


def test_a_composite_that_breaks_its_channels_rule_fails_with_channel_rule(
    tmp_path: Path, sample_photos: dict
) -> None:
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        "themes:\n  strict:\n    preset: google-shopping\n    canvas: [800, 800]\n"
        "    rules: {fill: [0.95, 1.0]}\n"
    )
    settings: Settings = make_settings(tmp_path / "home", themes_path=themes)
    upgrade(settings.database_url)
    (key,) = ingest(settings, [sample_photos["RING-0001"]])
    db = JobsDatabase(url=settings.database_url)
    storage = LocalObjectStore(root=str(settings.home))
    library = ThemeLibrary(path=str(themes))
    CutoutStage(
        db, storage, LocalSegmenter(models_dir=str(models_dir())), ImageFetcher(),
        ShopifyOutbox(outbox_dir=str(settings.home / "outbox")), ["strict"], 800, "r1",
    )(key)  # fmt: skip
    pk = f"{key}|strict"
    BackgroundStage(db, storage, library, NoBackgroundGenerator(), "r2")(pk)
    with pytest.raises(
        ChannelRuleBroken, match=r"strict composite .* breaks fill: the product spans"
    ):
        CompositeStage(db, storage, library, "r2")(pk)
    # The composite is kept to look at; its key is on the jobs row.
    with db.session() as session:
        job = get_job(session, key, "strict")
        assert job is not None and job.composite_key and storage.exists(job.composite_key)
