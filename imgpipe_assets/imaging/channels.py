"""Channel rules: what a marketplace demands of a product image, measured on the composite.

A channel preset (``amazon-main``, ``google-shopping``, ...) is a theme with ``rules``. After
rendering, the encoded composite is decoded again (what the channel will see) and each rule
is measured with its value, so a failure names the rule and the number:

- ``background``: this exact colour wherever neither the product nor its shadow touches
  the canvas. A lossy format rings inside the compression blocks the product touches (8 px
  for JPEG, 16 px for WebP), so those blocks are the product's; everywhere else must be
  exact, to the pixel.
- ``clean_background``: no border, text, watermark or other object: no sharp step (at least
  ``mark_step`` levels between neighbours) anywhere on the background outside the
  product's and its shadow's blocks. Gradients, vignettes, grain and soft textures have
  steps of a few levels.
- ``fill``: [min, max], the product's extent along the frame (its width over the canvas's
  width or its height over the canvas's height, the larger), from pixels above 5 % alpha.
- ``size`` (exact [w, h]), ``min_long_side``, ``min_short_side``, ``aspect`` (any of
  "w:h"), ``orientation`` (landscape, portrait or square).
- ``format`` (jpeg, webp, png) and ``srgb`` (RGB pixels with no profile, or an sRGB one).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageCms
from scipy import ndimage

from imgpipe_assets.imaging.compose import Layout

ORIENTATIONS = ("landscape", "portrait", "square")
_BLOCK = {"JPEG": 8, "WEBP": 16}  # the compression block a lossy format rings within
_ASPECT_TOLERANCE = 0.005


@dataclass(frozen=True)
class Rules:
    """A channel's rules; every field is optional (None or empty: not checked)."""

    background: tuple[int, int, int] | None = None
    clean_background: bool = False
    mark_step: int = 24
    fill: tuple[float, float] | None = None
    size: tuple[int, int] | None = None
    min_long_side: int | None = None
    min_short_side: int | None = None
    aspect: tuple[str, ...] = ()
    orientation: str | None = None
    format: str | None = None
    srgb: bool = False


@dataclass(frozen=True)
class Finding:
    """One rule measured on one composite."""

    rule: str
    passed: bool
    measured: str  # what was found, in words a person can check

    def __str__(self) -> str:
        return f"{self.rule}: {self.measured}"


def parse_rules(raw: Mapping[str, Any]) -> Rules:
    """Rules from a theme file's ``rules`` mapping; ValueError names the field."""
    known = set(Rules.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; rules are {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    if raw.get("background") is not None:
        values["background"] = _colour(raw["background"])
    if raw.get("clean_background") is not None:
        values["clean_background"] = _flag("clean_background", raw["clean_background"])
    if raw.get("mark_step") is not None:
        values["mark_step"] = _int("mark_step", raw["mark_step"], 1, 255)
    if raw.get("fill") is not None:
        pair = _pair("fill", raw["fill"], float)
        if not 0 < pair[0] <= pair[1] <= 1:
            raise ValueError("fill must be [min, max] with 0 < min <= max <= 1")
        values["fill"] = pair
    if raw.get("size") is not None:
        values["size"] = _pair("size", raw["size"], int)
    for name in ("min_long_side", "min_short_side"):
        if raw.get(name) is not None:
            values[name] = _int(name, raw[name], 1, 100_000)
    if raw.get("aspect") is not None:
        ratios = raw["aspect"] if isinstance(raw["aspect"], list) else [raw["aspect"]]
        for ratio in ratios:
            _ratio(str(ratio))
        values["aspect"] = tuple(str(r) for r in ratios)
    if raw.get("orientation") is not None:
        if raw["orientation"] not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}")
        values["orientation"] = str(raw["orientation"])
    if raw.get("format") is not None:
        if str(raw["format"]).lower() not in ("jpeg", "webp", "png"):
            raise ValueError("format must be jpeg, webp or png")
        values["format"] = str(raw["format"]).lower()
    if raw.get("srgb") is not None:
        values["srgb"] = _flag("srgb", raw["srgb"])
    return Rules(**values)


def _colour(value: Any) -> tuple[int, int, int]:
    text = str(value).lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"background must be a '#rrggbb' colour, not {value!r}")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return value


def _pair(name: str, value: Any, kind: type) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{name} must be a pair [a, b]")
    try:
        return kind(value[0]), kind(value[1])
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers") from None


def _ratio(text: str) -> float:
    try:
        w, h = (float(v) for v in text.split(":"))
    except ValueError:
        raise ValueError(f"aspect {text!r} must be 'width:height', e.g. '4:3'") from None
    if w <= 0 or h <= 0:
        raise ValueError(f"aspect {text!r} must be 'width:height', e.g. '4:3'")
    return w / h


def frame_findings(rules: Rules, width: int, height: int, fmt: str) -> list[Finding]:
    """The rules on the frame alone (size, aspect, orientation, format): checked when the
    theme file is read and again on every composite."""
    out: list[Finding] = []
    dims = f"{width} x {height} px"
    long_side, short_side = max(width, height), min(width, height)
    if rules.size is not None:
        out.append(
            Finding(
                "size",
                (width, height) == rules.size,
                f"{dims} (needs {rules.size[0]} x {rules.size[1]})",
            )
        )
    if rules.min_long_side is not None:
        out.append(
            Finding(
                "min_long_side",
                long_side >= rules.min_long_side,
                f"long side {long_side} px (needs >= {rules.min_long_side})",
            )
        )
    if rules.min_short_side is not None:
        out.append(
            Finding(
                "min_short_side",
                short_side >= rules.min_short_side,
                f"short side {short_side} px (needs >= {rules.min_short_side})",
            )
        )
    if rules.aspect:
        ratio = width / height
        ok = any(math.isclose(ratio, _ratio(r), rel_tol=_ASPECT_TOLERANCE) for r in rules.aspect)
        out.append(
            Finding("aspect", ok, f"{ratio:.4f} ({dims}; needs {' or '.join(rules.aspect)})")
        )
    if rules.orientation is not None:
        shape = "square" if width == height else "landscape" if width > height else "portrait"
        out.append(
            Finding(
                "orientation", shape == rules.orientation, f"{shape} (needs {rules.orientation})"
            )
        )
    if rules.format is not None:
        out.append(
            Finding("format", fmt.lower() == rules.format, f"{fmt.lower()} (needs {rules.format})")
        )
    return out


@dataclass(frozen=True)
class Shown:
    """An encoded composite decoded again: what a channel receives."""

    format: str  # JPEG, WEBP, PNG
    mode: str
    profile: bytes | None
    pixels: np.ndarray  # RGB uint8

    @classmethod
    def of(cls, encoded: bytes) -> Shown:
        with Image.open(io.BytesIO(encoded)) as im:
            fmt, mode, profile = str(im.format), im.mode, im.info.get("icc_profile")
            return cls(fmt, mode, profile, np.asarray(im.convert("RGB")))


def check(shown: Shown, layout: Layout, rules: Rules) -> list[Finding]:
    """Every rule measured on the composite as encoded (decoded again, as the channel
    will see it), with ``layout`` saying where the product and its shadow are."""
    height, width = shown.pixels.shape[:2]
    findings = frame_findings(rules, width, height, shown.format)
    if rules.srgb:
        findings.append(_srgb(shown.mode, shown.profile))
    if rules.fill is not None:
        findings.append(_fill(layout, rules.fill))
    if rules.background is not None or rules.clean_background:
        free = _untouched(layout, _BLOCK.get(shown.format, 0))
        if rules.background is not None:
            findings.append(_pure(shown.pixels, free, rules.background))
        if rules.clean_background:
            findings.append(_clean(shown.pixels, free, rules.mark_step))
    return findings


def failures(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if not f.passed]


def _srgb(mode: str, profile: bytes | None) -> Finding:
    if mode not in ("RGB", "RGBA", "L"):
        return Finding("srgb", False, f"{mode} pixels (needs RGB)")
    if not profile:
        return Finding("srgb", True, f"{mode}, no profile (sRGB assumed)")
    try:
        name = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (OSError, ImageCms.PyCMSError):
        return Finding("srgb", False, "an unreadable colour profile")
    name = name.strip()
    return Finding("srgb", "srgb" in name.lower(), f"profile {name!r} (needs sRGB)")


def _fill(layout: Layout, bounds: tuple[float, float]) -> Finding:
    low, high = bounds
    box = layout.product_box()
    if box is None:
        return Finding("fill", False, "no product on the canvas")
    top, left, bottom, right = box
    h, w = layout.canvas
    fill = max((right - left) / w, (bottom - top) / h)
    return Finding(
        "fill",
        low <= fill <= high,
        f"the product spans {fill * 100:.1f} % of the frame (needs {low * 100:g}-{high * 100:g} %)",
    )


def _untouched(layout: Layout, block: int) -> np.ndarray:
    """Canvas-sized: True where neither the product nor its shadow (nor, in a lossy format,
    a compression block they touch) changes the background."""
    covered = layout.covered()
    if block:
        h, w = covered.shape
        bh, bw = -(-h // block), -(-w // block)
        padded = np.zeros((bh * block, bw * block), bool)
        padded[:h, :w] = covered
        blocks = padded.reshape(bh, block, bw, block).any(axis=(1, 3))
        if block > 8:  # WebP's loop filter also reaches a few pixels into the next block
            blocks = ndimage.binary_dilation(blocks)
        covered = np.repeat(np.repeat(blocks, block, 0), block, 1)[:h, :w]
    return ~covered


def _pure(pixels: np.ndarray, free: np.ndarray, colour: tuple[int, int, int]) -> Finding:
    want = "#" + "".join(f"{c:02x}" for c in colour)
    target = np.broadcast_to(np.array(colour, np.uint8), pixels.shape)
    diff = _step(pixels, target)
    off = free & (diff > 0)
    count = int(off.sum())
    if not count:
        return Finding("background", True, f"{want} wherever the product and shadow are not")
    worst = np.unravel_index(int(np.argmax(np.where(off, diff.astype(np.int16), -1))), off.shape)
    value = tuple(int(v) for v in pixels[worst])
    return Finding(
        "background",
        False,
        f"{count} px of the background are not {want} (the worst {value} at x={worst[1]}, "
        f"y={worst[0]})",
    )


def _step(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| of uint8 RGB arrays, the largest over the channels (no widening copy; the
    channels are combined one by one, much faster than a reduction over a 3-long axis)."""
    d = np.maximum(a, b) - np.minimum(a, b)
    return np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])


def _clean(pixels: np.ndarray, free: np.ndarray, step: int) -> Finding:
    # A mark: a step of ``step`` levels or more, in some channel, between two neighbouring
    # background pixels; both pixels count as marked.
    marks = np.zeros(free.shape, bool)
    across = (_step(pixels[:, 1:], pixels[:, :-1]) >= step) & free[:, 1:] & free[:, :-1]
    down = (_step(pixels[1:], pixels[:-1]) >= step) & free[1:] & free[:-1]
    marks[:, 1:] |= across
    marks[:, :-1] |= across
    marks[1:] |= down
    marks[:-1] |= down
    count = int(marks.sum())
    if not count:
        return Finding("clean_background", True, f"no border, text or mark (steps < {step})")
    ys, xs = np.nonzero(marks)
    h, w = free.shape
    band = max(2, round(0.03 * min(h, w)))
    for side, near, along, length in (
        ("top", ys < band, xs, w),
        ("bottom", ys >= h - band, xs, w),
        ("left", xs < band, ys, h),
        ("right", xs >= w - band, ys, h),
    ):
        if near.any() and np.ptp(along[near]) >= length // 2:
            return Finding("clean_background", False, f"a border along the {side} edge")
    return Finding(
        "clean_background",
        False,
        f"{count} px of marks on the background (text or another object) at "
        f"x {xs.min()}-{xs.max()}, y {ys.min()}-{ys.max()}",
    )
