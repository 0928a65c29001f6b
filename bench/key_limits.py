"""The jewellery set scored with some of the backdrop key's limits changed, in one process.

    .venv/bin/python bench/key_limits.py [--eval DIR] [NAME=VALUE ...]

Cuts each shot of ../shared/eval/jewellery out as `imgpipe mask` does, with the
``KeyLimits`` fields named on the command line changed (``deep_contrast=25 gap_px=3``),
and prints per shot and overall the IoU, edge error and halo that its score.py would give
(the cut-out placed on the frame as the scorer places it, alpha and colour in 8 bits). With
no NAME=VALUE it scores the key as shipped, which is what `bench/jewellery.py` prints, in
a fraction of the time: a change to the key is measured across the set before it is made.
Skips, and says so, when the set is not there.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.halo_sources import _psnr, scored_band  # noqa: E402
from imgpipe_assets.imaging.backdrop import PLAIN, KeyLimits  # noqa: E402


def limits_from(pairs: list[str]) -> KeyLimits:
    """``KeyLimits`` with each NAME=VALUE set (typed as the field's default is)."""
    changes: dict[str, object] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in {f.name for f in dataclasses.fields(KeyLimits)}:
            raise SystemExit(f"no such limit: {name} (see KeyLimits in imaging/backdrop.py)")
        changes[name] = type(getattr(PLAIN, name))(float(value))
    return dataclasses.replace(PLAIN, **changes)  # type: ignore[arg-type]


def score(photo: Path, limits: KeyLimits) -> tuple[str, float, float, float]:
    """(shot, IoU, edge error, halo dB) of one shot cut out with ``limits``."""
    from imgpipe_assets.imaging.pipeline import cut_out
    from imgpipe_assets.imaging.segment import load_segmenter
    from imgpipe_resources.settings import Settings

    root = photo.parent.parent
    truth = np.asarray(Image.open(root / "alpha" / f"{photo.stem}.png"), np.float32) / 255
    ideal = np.asarray(Image.open(root / "fg" / f"{photo.stem}.png"), np.float32) / 255
    segmenter = load_segmenter(Settings.from_env().models_dir)
    cut = cut_out(photo.read_bytes(), segmenter, work_px=max(truth.shape), plain=limits)
    top, left, bottom, right = cut.crop
    full = np.zeros((*truth.shape, 4), np.float32)
    full[top:bottom, left:right, :3] = cut.rgb / 255.0
    full[top:bottom, left:right, 3] = np.round(cut.alpha * 255) / 255
    band = scored_band(truth)
    mine, want = full[..., 3] >= 0.5, truth >= 0.5
    iou = float((mine & want).sum() / max((mine | want).sum(), 1))
    edge_error = float(np.abs(full[..., 3] - truth)[band].mean())
    return photo.stem, iou, edge_error, _psnr(full[..., :3], full[..., 3], ideal, band)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "jewellery")
    parser.add_argument("limits", nargs="*", metavar="NAME=VALUE")
    args = parser.parse_args()
    if not (args.eval / "images").is_dir():
        print(f"skipped: no jewellery evaluation set at {args.eval}")
        return 0
    limits = limits_from(args.limits)
    photos = sorted((args.eval / "images").glob("*.jpg"))
    with ProcessPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(score, photos, [limits] * len(photos)))
    for name, iou, edge_error, halo in rows:
        print(f"{name:36s} IoU {iou:.3f}  edge {edge_error:.3f}  halo {halo:5.1f} dB")
    means = np.mean(np.array([row[1:] for row in rows]), axis=0)
    print(
        f"n={len(rows)} iou={means[0]:.4f} edge={means[1]:.4f} halo={means[2]:.2f}dB "
        f"with {' '.join(args.limits) or 'the key as shipped'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
