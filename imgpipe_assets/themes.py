"""Themes: the looks every image is rendered in, read from a YAML file users edit."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import yaml

from imgpipe_assets.errors import ImgpipeError, InvalidThemeFile, UnknownTheme
from imgpipe_assets.imaging.background import STYLES
from imgpipe_assets.imaging.channels import Rules, failures, frame_findings, parse_rules
from imgpipe_assets.imaging.compose import Frame, Shadow
from imgpipe_assets.imaging.decode import sniff

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
FORMATS = ("jpeg", "webp", "png")
UPSCALE = ("shrink", "review")
# The channel presets imgpipe ships: a theme named like one (or with ``preset: name``)
# starts from it, and what the theme file says overrides it field by field.
PRESETS_FILE = Path(__file__).resolve().parent / "presets.yaml"
_MERGED = ("background", "shadow", "output", "rules")  # merged key by key, not replaced


@dataclass(frozen=True)
class Theme:
    name: str
    background: dict[str, Any]
    canvas: tuple[int, int] = (2048, 2048)
    padding: float = 0.12
    align: str = "center"
    shadow: Shadow = field(default_factory=Shadow)
    output_format: str = "jpeg"
    quality: int = 90
    progressive: bool = False
    sizes: tuple[int, ...] = ()  # extra copies, by long side in pixels
    alt: str = "{title}"
    publish: str = "auto"
    featured: bool = False  # this theme's composite becomes the product's first image
    # The most a product is enlarged past its photo's own resolution, and what happens to
    # one that would need more: drawn smaller ("shrink") or held for a person ("review").
    max_upscale: float = 1.0
    upscale: str = "shrink"
    rules: Rules | None = None  # a channel's rules, measured on every composite
    preset: str | None = None

    @property
    def frame(self) -> Frame:
        lift = self.shadow.lift_for(self.align)
        return Frame(self.canvas[0], self.canvas[1], self.padding, self.align, lift=lift)

    @property
    def generative(self) -> bool:
        return self.background.get("style") == "generative"

    @property
    def seed(self) -> int:
        return int(self.background.get("seed", 0))

    def background_fingerprint(self) -> str:
        """Changes whenever anything that shapes the background changes."""
        spec = {"background": _portable(self.background), "canvas": list(self.canvas)}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def render_fingerprint(self) -> str:
        """Changes whenever anything that shapes the composite changes."""
        spec = asdict(self)
        spec.pop("alt")
        spec.pop("publish")
        spec.pop("featured")
        spec.pop("rules")
        spec.pop("preset")
        spec["background"] = _portable(self.background)
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]


def _portable(background: dict[str, Any]) -> dict[str, Any]:
    """The background spec without machine-specific paths (an image is pinned by sha256)."""
    return {k: v for k, v in background.items() if k != "path"}


def presets() -> dict[str, dict[str, Any]]:
    """The shipped channel presets, as theme-file entries."""
    doc = yaml.safe_load(PRESETS_FILE.read_text())
    return {str(k): dict(v) for k, v in doc["presets"].items()}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on ``base``, mappings inside merged key by key too."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _with_preset(
    where: str, name: str, raw: dict[str, Any], shipped: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The theme's entry laid over its preset's in ``shipped`` (named by ``preset``, or the
    theme's own name when that is a preset's); unchanged when it has none."""
    chosen = raw.get("preset", name if name in shipped else None)
    if chosen is None:
        return raw
    if str(chosen) not in shipped:
        raise InvalidThemeFile(
            f"{where}: preset {chosen!r} is not one of {', '.join(sorted(shipped))}"
        )
    merged = dict(shipped[str(chosen)])
    for key, value in raw.items():
        if key in _MERGED and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    merged["preset"] = str(chosen)
    return merged


# The nested shadow keys of a theme file, as the Shadow fields they set.
_SHADOW_KEYS = {
    "contact": {"strength": "contact_opacity", "softness": "contact_blur",
                "depth": "contact_height", "footprint": "footprint"},
    "drop": {"strength": "drop_opacity", "softness": "drop_blur", "distance": "drop_distance"},
    "floating": {"strength": "float_opacity", "softness": "float_blur", "lift": "float_lift"},
    "reflection": {"strength": "reflection_opacity", "fade": "reflection_fade",
                   "softness": "reflection_blur"},
}  # fmt: skip


def _shadow(where: str, raw: Any, align: str) -> Shadow:
    """``shadow:`` of a theme file: ``light`` plus ``contact``, ``drop``, ``floating`` and
    ``reflection`` mappings (strength, softness and their own knobs). The flat keys of
    earlier theme files (``contact_opacity``, ``drop_offset: [x, y]``, ...) still work."""
    if not isinstance(raw, dict):
        raise InvalidThemeFile(f"{where}: shadow must be a mapping")
    fields: dict[str, Any] = {}

    def number(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} must be a number, not {value!r}")
        return float(value)

    known = {f.name for f in dataclass_fields(Shadow)}
    try:
        for key, value in raw.items():
            if key in _SHADOW_KEYS:
                if not isinstance(value, dict):
                    raise ValueError(f"{key} must be a mapping of {', '.join(_SHADOW_KEYS[key])}")
                for part, v in value.items():
                    if part not in _SHADOW_KEYS[key]:
                        raise ValueError(
                            f"{key}.{part} is not one of {', '.join(_SHADOW_KEYS[key])}"
                        )
                    name = _SHADOW_KEYS[key][part]
                    fields[name] = str(v) if name == "footprint" else number(f"{key}.{part}", v)
            elif key == "drop_offset":  # [x, y] of the canvas: a direction and a distance
                if not isinstance(value, list) or len(value) != 2:
                    raise ValueError("drop_offset must be [x, y]")
                dx, dy = (number("drop_offset", v) for v in value)
                fields["drop_distance"] = math.hypot(dx, dy)
                fields.setdefault("light", math.degrees(math.atan2(-dx, dy)) % 360)
            elif key not in known:
                raise ValueError(f"{key} is not a shadow setting")
            else:
                fields[key] = str(value) if key == "footprint" else number(key, value)
        shadow = Shadow(**fields)
    except ValueError as exc:
        raise InvalidThemeFile(f"{where}: shadow: {exc}") from None
    if shadow.reflection_opacity > 0 and align != "bottom":
        raise InvalidThemeFile(f"{where}: shadow: a reflection needs align: bottom (a floor)")
    return shadow


def _theme(name: str, raw: dict[str, Any], base: Path, shipped: dict[str, dict[str, Any]]) -> Theme:
    where = f"theme {name!r}"
    if not _NAME_RE.match(name):
        raise InvalidThemeFile(f"{where}: names use a-z, 0-9, '-' and '_' (max 63)")
    raw = _with_preset(where, name, raw, shipped)
    background = dict(raw.get("background") or {})
    if background.get("style", "solid") not in (*STYLES, "generative"):
        raise InvalidThemeFile(
            f"{where}: background.style must be one of {(*STYLES, 'generative')}"
        )
    if background.get("style") == "generative" and not background.get("prompt"):
        raise InvalidThemeFile(f"{where}: a generative background needs background.prompt")
    if background.get("style") == "image":
        background = _image_background(where, background, base)
    canvas = tuple(int(v) for v in raw.get("canvas", (2048, 2048)))
    if len(canvas) != 2 or not all(64 <= v <= 4472 for v in canvas):
        raise InvalidThemeFile(f"{where}: canvas must be [width, height], each 64-4472")
    padding = float(raw.get("padding", 0.12))
    if not 0 <= padding < 0.45:
        raise InvalidThemeFile(f"{where}: padding must be in [0, 0.45)")
    align = str(raw.get("align", "center"))
    if align not in ("center", "bottom"):
        raise InvalidThemeFile(f"{where}: align must be center or bottom")
    shadow = _shadow(where, raw.get("shadow") or {}, align)
    output = dict(raw.get("output") or {})
    fmt = str(output.get("format", "jpeg")).lower()
    if fmt not in FORMATS:
        raise InvalidThemeFile(f"{where}: output.format must be one of {FORMATS}")
    quality = int(output.get("quality", 90))
    if not 1 <= quality <= 100:
        raise InvalidThemeFile(f"{where}: output.quality must be 1-100")
    progressive = bool(output.get("progressive", False))
    try:
        sizes = tuple(sorted({int(v) for v in output.get("sizes") or ()}, reverse=True))
    except (TypeError, ValueError):
        raise InvalidThemeFile(f"{where}: output.sizes must be a list of pixel sizes") from None
    if any(not 64 <= v < max(canvas) for v in sizes):
        raise InvalidThemeFile(f"{where}: output.sizes must be 64 px up to the canvas's long side")
    publish = str(raw.get("publish", "auto"))
    if publish not in ("auto", "review"):
        raise InvalidThemeFile(f"{where}: publish must be auto or review")
    featured = raw.get("featured", False)
    if not isinstance(featured, bool):
        raise InvalidThemeFile(f"{where}: featured must be true or false")
    try:
        max_upscale = float(raw.get("max_upscale", 1.0))
    except (TypeError, ValueError):
        max_upscale = 0.0
    if not 0.1 <= max_upscale <= 16:
        raise InvalidThemeFile(f"{where}: max_upscale must be a number from 0.1 to 16")
    upscale = str(raw.get("upscale", "shrink"))
    if upscale not in UPSCALE:
        raise InvalidThemeFile(f"{where}: upscale must be one of {', '.join(UPSCALE)}")
    rules = None
    if raw.get("rules") is not None:
        if not isinstance(raw["rules"], dict):
            raise InvalidThemeFile(f"{where}: rules must be a mapping of rule: value")
        try:
            rules = parse_rules(raw["rules"])
        except ValueError as exc:
            raise InvalidThemeFile(f"{where}: rules: {exc}") from None
        broken = failures(frame_findings(rules, canvas[0], canvas[1], fmt))
        if broken:
            raise InvalidThemeFile(
                f"{where} breaks its own rules: " + "; ".join(str(f) for f in broken)
            )
    return Theme(
        name=name,
        background=background,
        canvas=(canvas[0], canvas[1]),
        padding=padding,
        align=align,
        shadow=shadow,
        output_format=fmt,
        quality=quality,
        progressive=progressive,
        sizes=sizes,
        alt=str(raw.get("alt", "{title}")),
        publish=publish,
        featured=featured,
        max_upscale=max_upscale,
        upscale=upscale,
        rules=rules,
        preset=raw.get("preset"),
    )


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what, and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def load_themes(path: Path) -> dict[str, Theme]:
    """Parse and validate a theme file; errors name the theme and the field."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise InvalidThemeFile(f"cannot read theme file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InvalidThemeFile(
            f"theme file {path} is not valid YAML: {_yaml_reason(exc)}"
        ) from None
    raw_themes = (doc or {}).get("themes") if isinstance(doc, dict) else None
    if not isinstance(raw_themes, dict) or not raw_themes:
        raise InvalidThemeFile(f"{path}: expected a 'themes' mapping with at least one theme")
    base, shipped = Path(path).resolve().parent, presets()
    themes = {
        str(name): _theme(str(name), dict(raw or {}), base, shipped)
        for name, raw in raw_themes.items()
    }
    featured = [t.name for t in themes.values() if t.featured]
    if len(featured) > 1:
        raise InvalidThemeFile(
            f"{path}: only one theme can be featured (the product's first image), not "
            + ", ".join(featured)
        )
    return themes


def _image_background(where: str, background: dict[str, Any], base: Path) -> dict[str, Any]:
    """Resolve an image background's file (relative to the theme file) and pin its content:
    the fingerprint follows the picture's bytes, not where it happens to live."""
    raw = background.get("path")
    if not raw:
        raise InvalidThemeFile(f"{where}: an image background needs background.path")
    file = (base / str(raw)).resolve()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InvalidThemeFile(f"{where}: background.path {file}: {exc.strerror}") from None
    try:
        sniff(data)
    except ImgpipeError as exc:
        raise InvalidThemeFile(f"{where}: background.path {file}: {exc}") from None
    return {**background, "path": str(file), "sha256": hashlib.sha256(data).hexdigest()}


def get_theme(themes: dict[str, Theme], name: str) -> Theme:
    try:
        return themes[name]
    except KeyError:
        raise UnknownTheme(f"theme {name!r} is not in the theme file") from None
