"""Where the jewellery set's halo comes from: the cut-out's alpha or its edge colours.

    .venv/bin/python bench/halo_sources.py [--eval DIR]

For each shot of ../shared/eval/jewellery, the halo figure of its score.py (PSNR in the
7 px band around the true edge, laid on navy and on white, against the ideal cut-out) three
ways: imgpipe's cut-out as it is; imgpipe's alpha with the true colours (what the alpha
alone costs); the true alpha with imgpipe's colours (what the colours alone cost). Then
where the error of the cut-out as it is lies: the share of it where imgpipe's alpha is
above the truth by more than 0.1 (backdrop or shadow kept), below it (product cut away),
and within 4 px of the shot's thin parts (chains, wires). Runs ``imgpipe mask`` as the
scorer does. Skips, and says so, when the set is not there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

ROOT = Path(__file__).resolve().parent.parent
BACKGROUNDS = ((0.08, 0.09, 0.16), (1.0, 1.0, 1.0))  # the scorer's navy and white


def _error(rgb: np.ndarray, alpha: np.ndarray, ideal: np.ndarray) -> np.ndarray:
    """Per pixel, the squared error of the composite on the scorer's two backgrounds
    (mean over both and over the channels)."""
    total = np.zeros(alpha.shape, np.float32)
    for colour in BACKGROUNDS:
        bg = np.array(colour, np.float32)
        mine = rgb * alpha[..., None] + bg * (1 - alpha[..., None])
        want = ideal[..., :3] * ideal[..., 3:] + bg * (1 - ideal[..., 3:])
        total += ((mine - want) ** 2).mean(axis=-1) / len(BACKGROUNDS)
    return total


def scored_band(truth: np.ndarray) -> np.ndarray:
    """The 7 px band around the true edge that score.py scores (``truth`` alpha 0-1)."""
    edge = Image.fromarray((truth * 255).astype(np.uint8))
    return (np.asarray(edge.filter(ImageFilter.MaxFilter(7))) > 5) & (
        np.asarray(edge.filter(ImageFilter.MinFilter(7))) < 250
    )


def _psnr(rgb: np.ndarray, alpha: np.ndarray, ideal: np.ndarray, band: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(_error(rgb, alpha, ideal)[band].mean()), 1e-10)))


def _cutout(exe: Path, photo: Path, tmp: Path, shape: tuple[int, int]) -> np.ndarray:
    """imgpipe's RGBA cut-out (0-1) placed on the photo's frame, as the scorer places it."""
    mask, cut = tmp / "mask.png", tmp / "cut.png"
    for args in ([str(photo), "-o", str(mask), "--mask-only"], [str(photo), "-o", str(cut)]):
        subprocess.run([str(exe), "mask", *args], capture_output=True, check=True)
    ys, xs = np.nonzero(np.asarray(Image.open(mask)) > 0)
    rgba = np.asarray(Image.open(cut).convert("RGBA"), np.float32) / 255
    full = np.zeros((*shape, 4), np.float32)
    y0, x0 = int(ys.min()), int(xs.min())
    h, w = min(rgba.shape[0], shape[0] - y0), min(rgba.shape[1], shape[1] - x0)
    full[y0 : y0 + h, x0 : x0 + w] = rgba[:h, :w]
    return full


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "jewellery")
    args = parser.parse_args()
    if not (args.eval / "images").is_dir():
        print(f"skipped: no jewellery evaluation set at {args.eval}")
        return 0
    exe = Path(sys.executable).parent / "imgpipe"
    print(
        f"{'shot':36s} {'as is':>6s} {'alpha':>6s} {'colour':>6s}  (dB; higher is better)"
        "   error: alpha over / under / near thin parts"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for photo in sorted((args.eval / "images").glob("*.jpg")):
            name = photo.stem
            truth = np.asarray(Image.open(args.eval / "alpha" / f"{name}.png"), np.float32) / 255
            ideal = np.asarray(Image.open(args.eval / "fg" / f"{name}.png"), np.float32) / 255
            band = scored_band(truth)
            mine = _cutout(exe, photo, Path(tmp), truth.shape)
            own_colour = np.where(mine[..., 3:] > 0.02, mine[..., :3], ideal[..., :3])
            row = (
                _psnr(mine[..., :3], mine[..., 3], ideal, band),
                _psnr(ideal[..., :3], mine[..., 3], ideal, band),
                _psnr(own_colour, ideal[..., 3], ideal, band),
            )
            rows.append(row)
            err = _error(mine[..., :3], mine[..., 3], ideal)
            err = np.where(band, err, 0.0)
            total = max(float(err.sum()), 1e-12)
            off = mine[..., 3] - truth
            thin = np.asarray(Image.open(args.eval / "thin" / f"{name}.png")) > 127
            near_thin = ndimage.binary_dilation(thin, iterations=4)
            shares = [float(err[m].sum()) / total for m in (off > 0.1, off < -0.1, near_thin)]
            print(
                f"{name:36s} {row[0]:6.1f} {row[1]:6.1f} {row[2]:6.1f}"
                + "".join(f"  {v:9.0%}" if i else f"   {v:11.0%}" for i, v in enumerate(shares))
            )
    means = np.mean(np.array(rows), axis=0)
    print(
        f"mean: as is {means[0]:.1f} dB; imgpipe's alpha with the true colours {means[1]:.1f} dB; "
        f"the true alpha with imgpipe's colours {means[2]:.1f} dB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
