"""Whatever a retailer uploads leaves the decoder as upright 8-bit sRGB, or a named error."""

import io

import numpy as np
import pytest
from PIL import Image

from imgpipe_assets.imaging.decode import HEIF, decode, decode_rgba, reduction_for, sniff
from tests.icc import rgb_profile


def _save(im: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def test_cmyk_jpeg_becomes_rgb() -> None:
    # Pure cyan ink: no red, full green and blue.
    data = _save(Image.new("CMYK", (32, 32), (255, 0, 0, 0)), "JPEG", quality=95)
    rgb, alpha = decode_rgba(data)
    assert rgb.shape == (32, 32, 3) and alpha is None
    r, g, b = rgb[16, 16].astype(int)
    assert r < 40 and g > 200 and b > 200


def test_display_p3_photo_is_converted_to_srgb() -> None:
    # A saturated P3 red lies outside sRGB: converted, it clips to sRGB's own red, and a
    # P3 mid-grey stays grey. Without the conversion the values would pass through as is.
    p3 = rgb_profile()
    data = _save(Image.new("RGB", (16, 16), (200, 60, 60)), "PNG", icc_profile=p3)
    converted, _ = decode_rgba(data)
    r, g, b = converted[8, 8].astype(int)
    assert r > 215 and g < 55 and b < 55  # more saturated in sRGB numbers than in P3's
    grey = _save(Image.new("RGB", (4, 4), (128, 128, 128)), "JPEG", icc_profile=p3)
    g_rgb, _ = decode_rgba(grey)
    assert np.ptp(g_rgb[2, 2].astype(int)) <= 3


def test_broken_profile_is_ignored_not_fatal() -> None:
    data = _save(Image.new("RGB", (8, 8), (10, 20, 30)), "PNG", icc_profile=b"not a profile")
    rgb, _ = decode_rgba(data)
    assert tuple(rgb[0, 0]) == (10, 20, 30)


def test_sixteen_bit_grey_png_is_scaled_not_clipped() -> None:
    arr = np.full((8, 8), 32768, np.uint16)
    data = _save(Image.fromarray(arr), "PNG")
    rgb, _ = decode_rgba(data)
    assert 120 <= rgb[0, 0, 0] <= 135


def test_palette_and_la_images_keep_their_transparency() -> None:
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    pal.paste(1, (0, 0, 5, 10))
    rgb, alpha = decode_rgba(_save(pal, "PNG", transparency=1))
    assert alpha is not None and alpha[0, 0] == 0 and alpha[0, 9] == 255
    assert tuple(rgb[0, 9]) == (255, 0, 0)
    la = Image.new("LA", (10, 10), (128, 0))
    la.paste((128, 255), (2, 2, 8, 8))
    rgb, alpha = decode_rgba(_save(la, "PNG"))
    assert alpha is not None and alpha[5, 5] == 255 and alpha[0, 0] == 0


@pytest.mark.skipif(not HEIF, reason="pillow-heif not installed")
def test_heic_from_a_phone_is_read() -> None:
    data = _save(Image.new("RGB", (64, 48), (30, 160, 60)), "HEIF", quality=90)
    assert sniff(data).ext == "heic"
    rgb, _ = decode_rgba(data)
    assert rgb.shape == (48, 64, 3)
    assert np.abs(rgb[24, 32].astype(int) - (30, 160, 60)).max() < 12


def test_large_jpeg_decodes_at_reduced_scale_when_asked() -> None:
    data = _save(Image.new("RGB", (1600, 1200), (90, 90, 200)), "JPEG")
    assert reduction_for(1600, 1200, 400) == 4
    assert reduction_for(1600, 1200, 1000) == 1
    small = decode(data, min_long_side=400)
    assert small.scale == 4 and small.rgb.shape == (300, 400, 3)
    assert (small.width, small.height) == (1600, 1200)  # the source's size is still known
    full = decode(data)
    assert full.scale == 1 and full.rgb.shape == (1200, 1600, 3)


def test_reduced_decode_respects_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.new("RGB", (1600, 800)), "JPEG", exif=exif.tobytes())
    out = decode(data, min_long_side=400)
    assert out.rgb.shape[:2] == (400, 200)
    assert (out.width, out.height) == (800, 1600)
