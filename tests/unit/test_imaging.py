"""The pure imaging core: decoding bad input, backgrounds, compositing, encoding."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgpipe_assets.errors import ImageTooLarge, NotAnImage, TruncatedImage
from imgpipe_assets.imaging import background as bg
from imgpipe_assets.imaging.compose import Frame, Shadow, composite, place, subject_bbox
from imgpipe_assets.imaging.decode import decode_rgba, sniff
from imgpipe_assets.imaging.encode import encode, encode_mask, srgb_profile
from imgpipe_assets.imaging.segment import BorderColour, load_segmenter
from tests.helpers import png_header_only


def jpeg(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_fifty_thousand_square_png_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLarge, match="MP limit"):
        decode_rgba(png_header_only(50_000, 50_000))


def test_truncated_jpeg_is_a_named_error() -> None:
    data = jpeg((400, 300))
    with pytest.raises(TruncatedImage):
        decode_rgba(data[: len(data) // 2])


@pytest.mark.parametrize("data", [b"", b"hello world", b"%PDF-1.7\n" + b"0" * 100])
def test_non_images_are_named_errors(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        sniff(data)


def test_exif_orientation_is_applied() -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    rgb, _ = decode_rgba(buf.getvalue())
    assert rgb.shape[:2] == (40, 20)


def test_existing_transparency_is_kept_as_alpha() -> None:
    im = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    im.paste((255, 0, 0, 255), (5, 5, 15, 15))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    rgb, alpha = decode_rgba(buf.getvalue())
    assert alpha is not None and alpha[10, 10] == 255 and alpha[0, 0] == 0
    assert rgb.shape == (20, 20, 3)


@pytest.mark.parametrize("style", [s for s in bg.STYLES if s != "image"])
def test_backgrounds_are_deterministic_per_seed(style: str) -> None:
    spec = {"style": style, "colors": ["#ffffff", "#303040"]}
    a = bg.render(spec, 128, 96, seed=5)
    b = bg.render(spec, 128, 96, seed=5)
    c = bg.render(spec, 128, 96, seed=6)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("size", [(1001, 777), (640, 640)])
def test_smooth_backgrounds_are_the_formula_everywhere_even_at_the_edges(
    size: tuple[int, int],
) -> None:
    """Worked out on a coarse grid and scaled up, a vertical gradient is still its formula
    to within one level at every pixel, the last row and column too, whatever the size."""
    w, h = size
    spec = {"style": "gradient", "colors": ["#000000", "#ffffff"], "angle": 90, "grain": 0}
    out = bg.render(spec, w, h).astype(np.float32)
    t = np.arange(h, dtype=np.float32) / (h - 1)
    want = 255.0 * t * t * (3 - 2 * t)  # the gradient's smoothstep, row by row
    assert np.abs(out - want[:, None, None]).max() <= 1.0


def _square_subject(size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.zeros((size, size, 3), np.uint8)
    rgb[...] = (250, 10, 10)
    alpha = np.zeros((size, size), np.float32)
    alpha[30:70, 40:60] = 1.0
    return rgb, alpha


def test_subject_is_cropped_scaled_and_padded() -> None:
    rgb, alpha = _square_subject()
    fg, (x, y) = place(rgb, alpha, Frame(400, 400, padding=0.1, align="center"))
    assert fg.shape == (320, 160, 4)  # 40 x 20 subject scaled to fill 320 px of height
    assert (x, y) == (120, 40)
    fg, (x, y) = place(rgb, alpha, Frame(400, 400, padding=0.1, align="bottom"))
    assert y + fg.shape[0] == 360


def test_shadow_never_darkens_the_product_and_edges_blend_linearly() -> None:
    rgb, alpha = _square_subject()
    alpha[30:70, 40] = 0.5  # a half-covered edge column
    backdrop = np.full((400, 400, 3), 255, np.uint8)
    frame = Frame(400, 400, padding=0.1)
    out, _ = composite(backdrop, rgb, alpha, frame, Shadow(contact_opacity=0.9, drop_opacity=0.9))
    fg, (x, y) = place(rgb, alpha, frame)
    a = fg[..., 3]
    solid = np.zeros((400, 400), bool)
    solid[y : y + a.shape[0], x : x + a.shape[1]] = a == 255
    assert solid.any()
    # The product's own colour, no shadow on it.
    assert np.array_equal(out[solid], fg[a == 255][:, :3])
    assert np.abs(out[solid].astype(int) - (250, 10, 10)).max() <= 6
    below = out[y + a.shape[0] + 2, 200]
    assert below.mean() < 250  # but there is a shadow under it


def test_empty_mask_frames_the_whole_image() -> None:
    assert subject_bbox(np.zeros((10, 20), np.float32)) == (0, 0, 10, 20)


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
def test_outputs_are_srgb_tagged_without_other_metadata(fmt: str) -> None:
    data = encode(np.full((32, 32, 3), 128, np.uint8), fmt, 85)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == fmt.upper()
        assert im.info.get("icc_profile") == srgb_profile()
        assert not im.getexif()


def test_mask_png_is_8bit_and_same_size() -> None:
    alpha = np.linspace(0, 1, 30 * 20, dtype=np.float32).reshape(30, 20)
    with Image.open(io.BytesIO(encode_mask(alpha))) as im:
        assert (im.mode, im.size) == ("L", (20, 30))


def test_border_colour_fallback_finds_a_subject_on_plain_paper() -> None:
    rgb = np.full((200, 200, 3), 235, np.uint8)
    rgb[60:140, 70:130] = (40, 60, 160)
    alpha = BorderColour().predict(rgb)
    assert alpha[100, 100] > 0.9 and alpha[10, 10] < 0.1


def test_missing_weights_fall_back_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seg = load_segmenter(tmp_path / "nowhere")
    assert seg.name == "border-colour"
    assert "SEGMENTATION MODEL MISSING" in caplog.text


def test_u2netp_cuts_out_a_sample_product(needs_model: Path, sample_photos: dict) -> None:
    from imgpipe_assets.imaging.pipeline import cut_out

    seg = load_segmenter(needs_model.parent, allow_fallback=False)
    cut = cut_out(sample_photos["PENDANT-0003"].read_bytes(), seg)
    assert cut.model == "u2netp+backdrop-key"  # a studio shot on plain paper
    assert (cut.height, cut.width) == (600, 600)
    assert 0.02 < cut.coverage < 0.5
    assert cut.alpha[10, 10] < 0.1  # the corner is backdrop
    assert not cut.touches_edge


def test_previews_match_the_full_size_image_reduced() -> None:
    from imgpipe_assets.imaging.encode import thumbnail_jpeg
    from imgpipe_assets.imaging.pipeline import on_grey, on_grey_reduced

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (1557, 985, 3), dtype=np.uint8)
    alpha = np.zeros((1557, 985), np.float32)
    alpha[300:1200, 200:800] = rng.random((900, 600), dtype=np.float32)
    # The cut-out over grey, reduced in one premultiplied pass: within one level of
    # compositing at full size and then reducing.
    small = on_grey_reduced(rgb, alpha, 256)
    assert small.shape == (260, 165, 3)  # by 6 (1557 // 256): the long side stays >= 256
    full = np.asarray(Image.fromarray(on_grey(rgb, alpha)).reduce(6)).astype(int)
    assert np.abs(full - small.astype(int)).max() <= 1
    assert on_grey_reduced(rgb[:300, :200], alpha[:300, :200], 256).shape == (300, 200, 3)
    # A composite preview: 256 px on its long side, whatever the canvas's shape.
    for shape in ((2048, 2048, 3), (1536, 2048, 3), (2000, 1000, 4)):
        preview = Image.open(io.BytesIO(thumbnail_jpeg(np.zeros(shape, np.uint8))))
        assert max(preview.size) == 256 and preview.mode == "RGB"
    wide = Image.open(io.BytesIO(thumbnail_jpeg(np.zeros((1536, 2048, 3), np.uint8))))
    assert wide.size == (256, 192)
