"""Decoding untrusted image bytes into RGB arrays, with named errors for bad input."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from imgpipe_resources.errors import ImageTooLarge, NotAnImage, TruncatedImage

# Pillow's own guard against decompression bombs, set deliberately: 64 MP is well above any
# product photo (a 50 MP camera frame) and far below what would exhaust memory.
MAX_PIXELS = 64_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp", "GIF": "gif"}


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


def decode_rgba(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode to (H x W x 3 uint8 RGB, H x W uint8 alpha or None), EXIF orientation applied."""
    sniff(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                im: Image.Image = ImageOps.exif_transpose(opened) or opened
                has_alpha = im.mode in ("RGBA", "LA", "PA") or (
                    im.mode == "P" and "transparency" in im.info
                )
                rgba = im.convert("RGBA") if has_alpha else None
                rgb = (rgba or im).convert("RGB")
    except (OSError, SyntaxError) as exc:
        if "truncated" in str(exc).lower() or "image file is" in str(exc).lower():
            raise TruncatedImage(f"image data is incomplete: {exc}") from exc
        raise NotAnImage(f"image could not be decoded: {exc}") from exc
    except Image.DecompressionBombWarning as exc:
        raise ImageTooLarge(str(exc)) from exc
    alpha = np.asarray(rgba.getchannel("A")) if rgba is not None else None
    if alpha is not None and alpha.min() == 255:
        alpha = None
    return np.asarray(rgb), alpha


def decode_rgb(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    return decode_rgba(data, max_pixels)[0]
