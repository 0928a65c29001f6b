"""Halo: how much of the old backdrop a cut-out carries onto a new background.

    .venv/bin/python bench/halo.py [--size 1000]

Each sample product (true colour and true coverage known, from imgpipe's own sample
renderer) is photographed on four backdrops (white paper, mid grey, saturated blue, warm
beige), cut out, and composited onto a dark navy background. The result is compared with
the ideal composite (true colour, true coverage) in a band around the product's edge, where
halos live: PSNR in dB, higher is better. Variants separate the model's alpha, the guided
edge refinement and the colour decontamination (the path for backdrops that are not plain)
from the backdrop key that ships for plain ones; "true alpha" rows isolate
decontamination.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgpipe_assets.imaging.pipeline import (  # noqa: E402
    Cutout,
    cut_out,
    cutout_from_alpha,
    frame_alpha,
)
from imgpipe_assets.imaging.samples import PRODUCTS  # noqa: E402
from imgpipe_assets.imaging.segment import load_segmenter  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402

BACKDROPS = {
    "white paper": (240, 238, 234),
    "mid grey": (150, 150, 152),
    "blue": (40, 90, 200),
    "beige": (214, 190, 150),
}
NEW_BACKGROUND = np.array([20, 24, 40], np.float32)
BIG = 1 << 14  # no resizing: the cut-out stays at the photo's own scale


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def frame_rgb(cut: Cutout, width: int, height: int) -> np.ndarray:
    top, left, bottom, right = cut.crop
    out = np.zeros((height, width, 3), np.float32)
    out[top:bottom, left:right] = cut.rgb
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    segmenter = load_segmenter(Settings.from_env().models_dir, allow_fallback=False)
    rows: dict[str, list[float]] = {}
    for _title, draw in PRODUCTS.values():
        colour, cover = draw(args.size)
        edge = (cover > 0.5) ^ ndimage.binary_erosion(cover > 0.5, iterations=1)
        band = ndimage.binary_dilation(edge | ((cover > 0.02) & (cover < 0.98)), iterations=4)
        ideal = colour * cover[..., None] + NEW_BACKGROUND * (1 - cover[..., None])
        for name, backdrop in BACKDROPS.items():
            photo = colour * cover[..., None] + np.float32(backdrop) * (1 - cover[..., None])
            photo += np.random.default_rng(1).normal(0, 2.0, photo.shape)
            rgb = np.clip(photo + 0.5, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, "JPEG", quality=94, subsampling=0)
            data = buf.getvalue()
            variants = {
                "model alpha": cut_out(
                    data, segmenter, work_px=BIG, refine=False, clean_edges=False, plain=None
                ),
                "+ guided edge": cut_out(
                    data, segmenter, work_px=BIG, clean_edges=False, plain=None
                ),
                "+ guided edge + decontamination": cut_out(
                    data, segmenter, work_px=BIG, plain=None
                ),
                "backdrop key (ships)": cut_out(data, segmenter, work_px=BIG),
                "true alpha": cutout_from_alpha(
                    rgb, cover, "truth", work_px=BIG, clean_edges=False
                ),
                "true alpha + decontamination": cutout_from_alpha(rgb, cover, "truth", work_px=BIG),
            }
            for label, cut in variants.items():
                a = frame_alpha(cut, args.size, args.size)[..., None]
                out = frame_rgb(cut, args.size, args.size) * a + NEW_BACKGROUND * (1 - a)
                score = psnr(np.clip(out + 0.5, 0, 255)[band], np.clip(ideal + 0.5, 0, 255)[band])
                rows.setdefault(label, []).append(score)
                rows.setdefault(f"{label} | {name}", []).append(score)
    print(
        f"edge-band PSNR (dB) onto dark navy, {len(PRODUCTS)} products x {len(BACKDROPS)} backdrops"
    )
    for label, scores in rows.items():
        if "|" not in label:
            per = "  ".join(
                f"{b}: {statistics.mean(rows[f'{label} | {b}']):5.1f}" for b in BACKDROPS
            )
            print(f"  {label:34s} mean {statistics.mean(scores):5.1f}   {per}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
