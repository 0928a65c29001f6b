"""Every channel preset and shipped look over the evaluation photos in ../shared/eval:
per theme, how many composites pass each rule, and the colour fidelity of the product.

    .venv/bin/python bench/channels.py [--eval DIR] [--limit N]

Each photo goes through the production cut-out and each theme's render (with its
max_upscale). Rules are measured as the composite stage measures them (the JPEG decoded
again). Fidelity is CIEDE2000 between the photo's own product and the composite's, over the
product's solid interior (alpha 255): the photo decoded here independently (Pillow,
upright, converted to sRGB by its ICC profile), cropped as the cut-out was, resampled to
the size the product has on the canvas. "rendered" compares before encoding (what imgpipe
does to the colours), "encoded" after (what a shopper sees). Prints mean and 95th
percentile per theme, over all interior pixels of all photos.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgpipe_assets.imaging import channels, pipeline  # noqa: E402
from imgpipe_assets.imaging.contrast import srgb_to_lab  # noqa: E402
from imgpipe_assets.imaging.fidelity import ciede2000  # noqa: E402
from imgpipe_assets.imaging.segment import load_segmenter  # noqa: E402
from imgpipe_assets.themes import load_themes, presets  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402

SETS = ("jewellery", "synthetic", "segmentation")


def photo_srgb(data: bytes) -> np.ndarray:
    """The photo upright in sRGB, decoded without imgpipe's decoder."""
    with Image.open(io.BytesIO(data)) as im:
        im = ImageOps.exif_transpose(im)
        profile = im.info.get("icc_profile")
        im = im.convert("RGB")
        if profile:
            src = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            im = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"))
        return np.asarray(im)


def interior_deltas(
    photo: np.ndarray, cut: pipeline.Cutout, out: pipeline.Rendered, shown: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ΔE2000 over the product's solid interior: (before encoding, after encoding)."""
    layout = out.layout
    solid = layout.product == 255
    if not solid.any():
        return np.zeros(0), np.zeros(0)
    # The cut-out's alpha box inside its crop, in source pixels, resampled to the canvas.
    top, left, bottom, right = cut.crop
    sy, sx = (bottom - top) / cut.alpha.shape[0], (right - left) / cut.alpha.shape[1]
    rows = np.flatnonzero((cut.alpha > 0.05).any(axis=1))
    cols = np.flatnonzero((cut.alpha > 0.05).any(axis=0))
    box = (
        left + cols[0] * sx,
        top + rows[0] * sy,
        left + (cols[-1] + 1) * sx,
        top + (rows[-1] + 1) * sy,
    )
    t, lft, b, r = layout.product_rect
    truth = np.asarray(
        Image.fromarray(photo).resize((r - lft, b - t), Image.Resampling.BICUBIC, box=box)
    )
    shown = shown[t:b, lft:r]
    ys, xs = np.nonzero(solid)
    step = max(1, ys.size // 40000)
    ys, xs = ys[::step], xs[::step]
    want = srgb_to_lab(truth[ys, xs])
    rendered = ciede2000(want, srgb_to_lab(out.image[t:b, lft:r][ys, xs]))
    encoded = ciede2000(want, srgb_to_lab(shown[ys, xs]))
    return rendered, encoded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--limit", type=int, default=0, help="photos per set (0: all)")
    args = parser.parse_args()
    if not args.eval.is_dir():
        print(f"skipped: no evaluation data at {args.eval}")
        return 0
    looks = load_themes(ROOT / "imgpipe_assets" / "themes.yaml")
    text = "themes:\n" + "".join(f"  {name}: {{}}\n" for name in presets())
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "presets.yaml"
        tmp.write_text(text)
        themes = {**{k: v for k, v in looks.items() if v.rules is None}, **load_themes(tmp)}
    segmenter = load_segmenter(Settings.from_env().models_dir)
    work_px = pipeline.work_size(themes.values())
    backgrounds = {name: pipeline.background(t) for name, t in themes.items()}
    passes: dict[str, Counter[str]] = defaultdict(Counter)
    counts: Counter[str] = Counter()
    failed: dict[str, Counter[str]] = defaultdict(Counter)
    rendered_de: dict[str, list[np.ndarray]] = defaultdict(list)
    encoded_de: dict[str, list[np.ndarray]] = defaultdict(list)
    held: Counter[str] = Counter()
    photos = []
    for name in SETS:
        folder = args.eval / name / "images"
        found = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".png"))
        photos += found[: args.limit] if args.limit else found
    print(f"{len(photos)} photos from {', '.join(SETS)}; {len(themes)} themes")
    for path in photos:
        data = path.read_bytes()
        cut = pipeline.cut_out(data, segmenter, work_px=work_px)
        photo = photo_srgb(data)
        for name, theme in themes.items():
            size = pipeline.enlargement(cut, theme)
            held[name] += size.review_reason is not None
            out = pipeline.render(
                cut.rgb, cut.alpha, backgrounds[name], theme, None, size.max_scale
            )
            counts[name] += 1
            shown = channels.Shown.of(out.data)
            if theme.rules is not None:
                for finding in channels.check(shown, out.layout, theme.rules):
                    passes[name][finding.rule] += finding.passed
                    if not finding.passed:
                        failed[name][f"{finding.rule}: {finding.measured}"[:90]] += 1
            before, after = interior_deltas(photo, cut, out, shown.pixels)
            rendered_de[name].append(before)
            encoded_de[name].append(after)
    print(
        f"\n{'theme':18} {'photos':>6}  {'ΔE rendered mean/p95':>21}  "
        f"{'ΔE encoded mean/p95':>20}  enlarged→review  rules passed"
    )
    for name in themes:
        before = np.concatenate(rendered_de[name])
        after = np.concatenate(encoded_de[name])
        rules = ", ".join(f"{r} {n}/{counts[name]}" for r, n in passes[name].items()) or "-"
        print(
            f"{name:18} {counts[name]:6d}  {before.mean():9.2f} / {np.percentile(before, 95):5.2f}"
            f"     {after.mean():9.2f} / {np.percentile(after, 95):5.2f}  "
            f"{held[name]:15d}  {rules}"
        )
    for name, reasons in failed.items():
        for reason, n in reasons.most_common(3):
            print(f"  {name}: {n} x {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
