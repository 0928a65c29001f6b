"""Shadows and marble: contact shaped by the footprint, drop and floating shadows falling
away from the light, a glossy floor's reflection, and veined marble; on small generated
products, asserting where darkness and colour land."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgpipe_assets.errors import InvalidThemeFile
from imgpipe_assets.imaging import background
from imgpipe_assets.imaging.compose import Frame, Shadow, composite, place
from imgpipe_assets.themes import load_themes

GREY = 200
CANVAS = 400


def _product(kind: str = "block") -> tuple[np.ndarray, np.ndarray]:
    """A red product on a 100 x 100 crop: a solid block, or a ring standing on its band
    (an outline touching the floor only at the bottom of the circle)."""
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[...] = (220, 20, 20)
    yy, xx = np.mgrid[0:100, 0:100]
    if kind == "ring":
        r = np.hypot(yy - 50, xx - 50)
        alpha = ((r > 40) & (r <= 49.5)).astype(np.float32)
    else:
        alpha = np.zeros((100, 100), np.float32)
        alpha[20:80, 30:70] = 1.0
    return rgb, alpha


def _render(
    shadow: Shadow, align: str = "bottom", kind: str = "block"
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """(composite, the placed product's alpha, its (x, y)) on flat grey."""
    rgb, alpha = _product(kind)
    frame = Frame(CANVAS, CANVAS, padding=0.15, align=align, lift=shadow.lift_for(align))
    back = np.full((CANVAS, CANVAS, 3), GREY, np.uint8)
    out, _ = composite(back, rgb, alpha, frame, shadow)
    fg, at = place(rgb, alpha, frame)
    return out, fg[..., 3], at


def _darkness(out: np.ndarray) -> np.ndarray:
    return GREY - out.astype(np.float32).mean(axis=2)


def _outside(a: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    mask = np.ones((CANVAS, CANVAS), bool)
    x, y = at
    mask[y : y + a.shape[0], x : x + a.shape[1]] &= a == 0
    return mask


def test_contact_shadow_is_darkest_where_a_standing_ring_touches_the_floor() -> None:
    out, a, (x, y) = _render(Shadow(contact_opacity=0.6, contact_blur=0.03), kind="ring")
    dark = _darkness(out)
    base = y + int(np.flatnonzero((a > 127).any(axis=1))[-1])
    centre = x + a.shape[1] // 2
    under = dark[base + 2, centre]
    assert under > 20  # a real shadow where the band meets the floor
    # The ring's sides rise away from the floor: little shadow under them.
    side = dark[base + 2, x + 3]
    assert side < under * 0.5
    # Nothing above the floor is darkened (the hole shows clean background).
    assert dark[y + a.shape[0] // 2, centre] < 1


def test_outline_footprint_shades_around_a_piece_lying_flat() -> None:
    flat, a, (x, y) = _render(Shadow(contact_opacity=0.6), align="center")
    standing, _, _ = _render(Shadow(contact_opacity=0.6, footprint="base"), align="center")
    above = (y - 3, x + a.shape[1] // 2)
    assert _darkness(flat)[above] > 5  # a flat piece touches the surface all round
    assert _darkness(standing)[above] < 1  # a standing one only at its base


@pytest.mark.parametrize(("light", "sign"), [(315.0, 1), (45.0, -1)])
def test_drop_shadow_falls_away_from_the_light(light: float, sign: int) -> None:
    shadow = Shadow(light=light, contact_opacity=0, drop_opacity=0.6, drop_blur=0.01)
    out, a, at = _render(shadow, align="center")
    dark = _darkness(out) * _outside(a, at)
    ys, xs = np.nonzero(dark > 3)
    cx = at[0] + a.shape[1] / 2
    assert ys.size
    assert np.sign(xs.mean() - cx) == sign  # sideways, away from the light
    assert ys.mean() > at[1] + a.shape[0] / 2  # and down: the light is above


def test_floating_product_hovers_above_its_shadow() -> None:
    still, a0, (x0, y0) = _render(Shadow(contact_opacity=0))
    lifted = Shadow(contact_opacity=0, float_opacity=0.6, float_blur=0.01, float_lift=0.08)
    out, a, (x, y) = _render(lifted)
    bottom0 = y0 + a0.shape[0]
    bottom = y + int(np.flatnonzero((a > 127).any(axis=1))[-1]) + 1
    assert bottom0 - bottom >= int(0.08 * CANVAS) - 1  # raised by its lift
    column = _darkness(out)[:, x + a.shape[1] // 2]
    floor = bottom + int(0.08 * CANVAS)
    assert column[floor] > 10  # the shadow lies on the floor below
    assert column[bottom + 2] < column[floor] * 0.5  # with light between it and the piece
    assert (_darkness(still) * _outside(a0, (x0, y0))).max() < 1  # no lift, no shadow


def test_reflection_mirrors_the_product_and_fades() -> None:
    shadow = Shadow(contact_opacity=0, reflection_opacity=0.5, reflection_fade=0.15)
    out, a, (x, y) = _render(shadow)
    base = y + a.shape[0]
    centre = x + a.shape[1] // 2
    near, far = out[base + 1, centre].astype(int), out[base + 25, centre].astype(int)
    assert near[0] - near[1] > 60  # the red product, seen in the floor
    assert 0 < far[0] - far[1] < near[0] - near[1]  # fainter further away
    beyond = out[base + int(0.15 * a.shape[0]) + 2, centre].astype(int)
    assert abs(beyond[0] - GREY) <= 1 and abs(beyond[1] - GREY) <= 1  # gone past its fade


def test_reflection_counts_as_covered_background() -> None:
    rgb, alpha = _product()
    frame = Frame(CANVAS, CANVAS, padding=0.15, align="bottom")
    back = np.full((CANVAS, CANVAS, 3), 255, np.uint8)
    glossy = Shadow(contact_opacity=0, reflection_opacity=0.4)
    _, layout = composite(back, rgb, alpha, frame, glossy)
    covered = layout.covered()
    t, left, b, r = layout.reflection_rect
    assert b > t and covered[t + 1, (left + r) // 2]


def _themes(tmp_path: Path, body: str) -> dict:
    path = tmp_path / "themes.yaml"
    path.write_text("themes:\n" + body)
    return load_themes(path)


def test_theme_file_shadow_settings(tmp_path: Path) -> None:
    themes = _themes(
        tmp_path,
        """  glossy:
    background: {style: solid, colors: ["#101010"]}
    align: bottom
    shadow:
      light: 300
      contact: {strength: 0.5, softness: 0.02, footprint: base}
      drop: {strength: 0.2, distance: 0.03}
      floating: {strength: 0.3, lift: 0.05}
      reflection: {strength: 0.25, fade: 0.4}
  legacy:
    background: {style: solid, colors: ["#ffffff"]}
    shadow: {contact_opacity: 0.3, drop_opacity: 0.2, drop_offset: [0.03, 0.04]}
  amazon-main: {shadow: {contact: {strength: 0.3}}}
""",
    )
    s = themes["glossy"].shadow
    assert (s.light, s.contact_opacity, s.contact_blur, s.footprint) == (300, 0.5, 0.02, "base")
    assert (s.drop_opacity, s.drop_distance, s.float_lift, s.reflection_fade) == (
        0.2,
        0.03,
        0.05,
        0.4,
    )
    assert themes["glossy"].frame.lift == 0.05
    legacy = themes["legacy"].shadow
    assert legacy.drop_distance == pytest.approx(0.05)
    ax, ay = legacy.away
    assert (ax, ay) == pytest.approx((0.6, 0.8))  # the old offset's direction
    # A preset's shadow is merged inside each shadow too: softness stays the preset's.
    amazon = themes["amazon-main"].shadow
    assert amazon.contact_opacity == 0.3 and amazon.contact_blur == 0.03


@pytest.mark.parametrize(
    ("shadow", "said"),
    [
        ("{contact: {strenght: 0.3}}", "contact.strenght is not one of"),
        ("{glow: 0.3}", "glow"),
        ("{drop: {strength: 1.5}}", "strength must be 0-1"),
        ("{contact: {footprint: side}}", "footprint must be one of"),
        ("{reflection: {strength: 0.3}}", "a reflection needs align: bottom"),
    ],
)
def test_bad_shadow_settings_are_named(tmp_path: Path, shadow: str, said: str) -> None:
    with pytest.raises(InvalidThemeFile, match=said):
        _themes(
            tmp_path,
            f"  t:\n    background: {{style: solid}}\n    align: center\n    shadow: {shadow}\n",
        )


def _marble(angle: float, seed: int = 4) -> np.ndarray:
    style = {"style": "marble", "colors": ["#f4efe8", "#8a7d6c"], "vein_angle": angle}
    return background.render(style, 600, 600, seed=seed).astype(np.float32).mean(axis=2)


def test_marble_has_thin_veins_running_its_way() -> None:
    lum = _marble(0.0)
    base = np.percentile(lum, 60)
    veins = lum < base - 25
    assert 0.002 < veins.mean() < 0.2  # veins, neither absent nor a blotchy field
    # Veins are thin: most vein pixels are within a few pixels of clear stone.
    from scipy import ndimage

    width = ndimage.distance_transform_edt(veins)
    assert np.percentile(width[veins], 90) <= 6
    # vein_angle 0 runs the veins up and down (the stone changes across x); 90 turns them.
    gy0, gx0 = np.gradient(lum)
    gy9, gx9 = np.gradient(_marble(90.0))
    assert (gx0**2).sum() > (gy0**2).sum() and (gy9**2).sum() > (gx9**2).sum()
    assert np.array_equal(lum, _marble(0.0)) and not np.array_equal(lum, _marble(0.0, seed=5))
