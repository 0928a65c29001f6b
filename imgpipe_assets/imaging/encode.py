"""Encoding for the shop: sRGB-tagged JPEG, WebP or PNG with no other metadata."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image, ImageCms

CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp", "png": "image/png"}
EXTENSIONS = {"jpeg": "jpg", "webp": "webp", "png": "png"}


@cache
def srgb_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def encode(
    image: np.ndarray, fmt: str = "jpeg", quality: int = 90, progressive: bool = False
) -> bytes:
    """Encode an RGB or RGBA uint8 array; only the sRGB profile is embedded.

    JPEGs are baseline with full-resolution colour (no chroma subsampling: jewellery's fine
    coloured edges survive). ``progressive`` (with optimised Huffman tables) makes files
    about 5 % smaller and costs about three times the encoding time.
    """
    fmt = fmt.lower()
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"unsupported output format {fmt!r}")
    im = Image.fromarray(image)
    if fmt == "jpeg" and im.mode != "RGB":
        im = im.convert("RGB")
    buf = io.BytesIO()
    kwargs: dict[str, object] = {"icc_profile": srgb_profile()}
    if fmt == "jpeg":
        kwargs.update(quality=quality, subsampling=0)
        if progressive:
            kwargs.update(optimize=True, progressive=True)
    elif fmt == "webp":
        kwargs.update(quality=quality, method=4)
    else:
        kwargs.update(compress_level=6)
    im.save(buf, format=fmt.upper(), **kwargs)
    return buf.getvalue()


def encode_mask(alpha: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of a [0, 1] float or uint8 alpha."""
    if alpha.dtype != np.uint8:
        alpha = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(alpha, mode="L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def thumbnail_jpeg(image: np.ndarray, size: int = 256, quality: int = 80) -> bytes:
    im = Image.fromarray(image)
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    # Each preview pixel first the mean of a whole block (a box reduction by the largest
    # whole factor), then Lanczos over what is left: a 2048 px composite's preview in
    # about 7 ms (12 ms when Lanczos ran over the last factor of 2), alike at 256 px.
    factor = max(im.size) // size
    if factor >= 2:
        im = im.reduce(factor)
    im.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
