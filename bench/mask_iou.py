"""Mask IoU of the offline segmenter on the evaluation photos in ../shared/eval.

    .venv/bin/python bench/mask_iou.py [--eval DIR] [--flip] [--no-key] [--no-refine]
                                       [--no-matting]
    .venv/bin/python bench/mask_iou.py --fallback

Runs each photo through the production cut-out (decode, model on a reduced copy, the
backdrop key on plain studio backdrops, elsewhere the model's alpha with backdrop recovery
and guided edge refinement) and scores its alpha, placed back on the whole
frame and thresholded at 0.5, against ground truth, ignoring 128 (unlabelled) pixels.
"Plain-background" photos are those whose 8-pixel border band has a colour spread (mean
per-channel standard deviation) under 30; the rule is printed so the subset can be checked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgpipe_assets.imaging.backdrop import KeyLimits  # noqa: E402
from imgpipe_assets.imaging.pipeline import cut_out, frame_alpha  # noqa: E402
from imgpipe_assets.imaging.segment import BorderColour, U2NetP, load_segmenter  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402

PLAIN_BORDER_STD = 30.0


def border_spread(rgb: np.ndarray, band: int = 8) -> float:
    edge = np.concatenate(
        [
            rgb[:band].reshape(-1, 3),
            rgb[-band:].reshape(-1, 3),
            rgb[:, :band].reshape(-1, 3),
            rgb[:, -band:].reshape(-1, 3),
        ]
    ).astype(np.float32)
    return float(edge.std(axis=0).mean())


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    valid = truth != 128
    pred = alpha >= 0.5
    gt = truth > 128
    inter = np.logical_and(pred, gt)[valid].sum()
    union = np.logical_or(pred, gt)[valid].sum()
    return float(inter / union) if union else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--flip", action="store_true", help="add a mirrored second opinion")
    parser.add_argument("--no-key", action="store_true", help="never the backdrop key")
    parser.add_argument("--no-refine", action="store_true", help="no backdrop recovery")
    parser.add_argument("--no-matting", action="store_true", help="no guided edge refinement")
    parser.add_argument("--fallback", action="store_true", help="score the weights-free fallback")
    args = parser.parse_args()
    if not args.eval.is_dir():
        print(f"skipped: no evaluation data at {args.eval}")
        return 0
    models = Settings.from_env().models_dir
    seg = BorderColour() if args.fallback else load_segmenter(models, allow_fallback=False)
    if isinstance(seg, U2NetP) and args.flip:
        seg = U2NetP(models / "u2netp.onnx", flip_tta=True)
    groups: dict[str, list[float]] = {}
    seconds = []
    for sub in ("segmentation", "synthetic"):
        for img_path in sorted((args.eval / sub / "images").glob("*")):
            mask_path = args.eval / sub / "masks" / (img_path.stem + ".png")
            data = img_path.read_bytes()
            rgb = np.asarray(Image.open(img_path).convert("RGB"))
            truth = np.asarray(Image.open(mask_path).convert("L"))
            t0 = time.perf_counter()
            cut = cut_out(
                data,
                seg,
                refine=not args.no_matting,
                plain=None if args.no_key else KeyLimits(),
                recover=not args.no_refine,
            )
            seconds.append(time.perf_counter() - t0)
            alpha = frame_alpha(cut, truth.shape[1], truth.shape[0])
            score = iou(alpha, truth)
            names = [sub]
            if sub == "segmentation":
                names.append("real/" + img_path.name.split("_")[0])
                if border_spread(rgb) < PLAIN_BORDER_STD:
                    names.append("real/plain-background")
            elif any(w in img_path.name for w in ("white", "grey")):
                names.append("synthetic/white-or-grey")
            for name in names:
                groups.setdefault(name, []).append(score)
            print(f"{img_path.name:36s} {score:.3f}  spread={border_spread(rgb):5.1f}")
    extras = (
        (" +flip" if args.flip else "")
        + ("" if args.no_key else " +backdrop key")
        + ("" if args.no_refine else " +backdrop recovery")
        + ("" if args.no_matting else " +guided edge")
    )
    print(f"\nsegmenter: {seg.name}{extras}")
    print(f"{'subset':28s} {'n':>3s} {'mean':>6s} {'median':>6s}")
    for name, scores in sorted(groups.items()):
        print(
            f"{name:28s} {len(scores):3d} {statistics.mean(scores):6.3f} "
            f"{statistics.median(scores):6.3f}"
        )
    print(f"seconds per image: mean {statistics.mean(seconds):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
