"""Decoding untrusted image bytes into sRGB arrays, with named errors for bad input.

Whatever arrives (a phone's HEIC, a print shop's CMYK JPEG with its profile, a 16-bit PNG, a
palette GIF, a PNG that is already cut out, a photo lying on its side in EXIF) leaves as
8-bit sRGB, upright, plus its own alpha when it has one. Large JPEGs can be decoded at a
reduced scale (1/2, 1/4, 1/8) straight from the DCT, which costs a fraction of a full decode
and of its memory.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageCms, ImageOps

from imgpipe_assets.errors import ImageTooLarge, NotAnImage, TruncatedImage

try:  # HEIC/HEIF (iPhone photos) where the pillow-heif wheel is installed
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    HEIF = False

# Pillow's own guard against decompression bombs, set deliberately: 64 MP is well above any
# product photo (a 50 MP camera frame) and far below what would exhaust memory.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMATS = {
    "JPEG": "jpg",
    "PNG": "png",
    "WEBP": "webp",
    "TIFF": "tif",
    "BMP": "bmp",
    "GIF": "gif",
    "HEIF": "heic",
}


@dataclass(frozen=True)
class SourceInfo:
    format: str
    ext: str
    width: int
    height: int


def sniff(data: bytes, max_pixels: int = MAX_PIXELS) -> SourceInfo:
    """Identify an image from its header alone; refuse non-images and oversized frames."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or ""
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"over the {max_pixels / 1e6:.0f} MP limit: {exc}") from exc
    except Exception as exc:
        raise NotAnImage(f"not a readable image ({type(exc).__name__})") from exc
    if fmt not in FORMATS:
        raise NotAnImage(f"unsupported image format {fmt or 'unknown'}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{width} x {height} is {width * height / 1e6:.0f} MP; the limit is "
            f"{max_pixels / 1e6:.0f} MP"
        )
    return SourceInfo(fmt, FORMATS[fmt], width, height)


@cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _to_srgb(im: Image.Image) -> Image.Image:
    """Convert through the embedded ICC profile when there is one (Display P3 phone photos,
    Adobe RGB and CMYK print files); an unreadable profile is ignored, not fatal."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(
            im, source, _srgb(), outputMode=out_mode, renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return im
    return converted if converted is not None else im


def _eight_bit(im: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale to 8-bit by scaling, not clipping."""
    if im.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return im
    arr = np.asarray(im).astype(np.float64)
    top = 65535.0 if arr.max() > 255 else 255.0
    return Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")


def reduction_for(width: int, height: int, min_long_side: int | None) -> int:
    """The largest JPEG DCT scale (1, 2, 4 or 8) that keeps the long side >= min_long_side."""
    if not min_long_side:
        return 1
    for scale in (8, 4, 2):
        if max(width, height) / scale >= min_long_side:
            return scale
    return 1


@dataclass(frozen=True)
class Decoded:
    rgb: np.ndarray  # H x W x 3 uint8 sRGB, upright
    alpha: np.ndarray | None  # H x W uint8, or None when fully opaque
    scale: int  # the decode's reduction: 1 = full size
    width: int  # the upright source's full size
    height: int
    format: str = ""  # JPEG, PNG, ... (only JPEGs can be decoded reduced)


def decode(data: bytes, max_pixels: int = MAX_PIXELS, min_long_side: int | None = None) -> Decoded:
    """Decode to sRGB, EXIF orientation applied.

    With ``min_long_side``, a JPEG is decoded at the largest reduction whose long side still
    reaches it; other formats are decoded in full.
    """
    info = sniff(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                scale = 1
                if opened.format == "JPEG":
                    scale = reduction_for(info.width, info.height, min_long_side)
                    if scale > 1:
                        size = (-(-info.width // scale), -(-info.height // scale))
                        opened.draft("RGB" if opened.mode == "RGB" else None, size)
                opened.load()
                quarter_turn = opened.getexif().get(0x0112, 1) in (5, 6, 7, 8)
                im: Image.Image = ImageOps.exif_transpose(opened) or opened
                im.info.setdefault("icc_profile", opened.info.get("icc_profile"))
                im = _to_srgb(_eight_bit(im))
                has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                    im.mode == "P" and "transparency" in im.info
                )
                rgba = im.convert("RGBA") if has_alpha else None
                rgb = (rgba or im).convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        if "truncated" in str(exc).lower() or "image file is" in str(exc).lower():
            raise TruncatedImage(f"image data is incomplete: {exc}") from exc
        raise NotAnImage(f"image could not be decoded: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageTooLarge(str(exc)) from exc
    alpha = np.asarray(rgba.getchannel("A")) if rgba is not None else None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    arr = np.asarray(rgb)
    full_w, full_h = (info.height, info.width) if quarter_turn else (info.width, info.height)
    return Decoded(arr, alpha, scale, full_w, full_h, info.format)


def decode_rgba(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode in full to (H x W x 3 uint8 sRGB, H x W uint8 alpha or None)."""
    out = decode(data, max_pixels)
    return out.rgb, out.alpha


def decode_rgb(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    return decode_rgba(data, max_pixels)[0]
