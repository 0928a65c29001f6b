"""Jewellery cut-outs scored against exact ground truth, through the `imgpipe mask` command.

    .venv/bin/python bench/jewellery.py [--eval DIR] [--no-key]

Runs ../shared/eval/jewellery/score.py (IoU, holes open, chains kept, edge error, halo) on
the rendered jewellery shots, with the goals the product holds itself to, and prints its
per-shot lines and summary. ``--no-key`` scores the model alone (IMGPIPE_BACKDROP_KEY=0)
for comparison. Skips, and says so, when the evaluation set is not there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOALS = ["iou=0.95", "thin=0.90", "holes=0.97", "edge=0.10", "halo=30"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval" / "jewellery")
    parser.add_argument("--no-key", action="store_true", help="the model's alpha alone")
    args = parser.parse_args()
    scorer = args.eval / "score.py"
    if not scorer.is_file():
        print(f"skipped: no jewellery evaluation set at {args.eval}")
        return 0
    exe = Path(sys.executable).parent / "imgpipe"
    env = {**os.environ, "IMGPIPE_BACKDROP_KEY": "0" if args.no_key else "1"}
    proc = subprocess.run(
        [sys.executable, str(scorer), str(args.eval), str(exe), *GOALS],
        capture_output=True,
        text=True,
        env=env,
    )
    print(proc.stdout, end="")
    print(f"backdrop key: {'off' if args.no_key else 'on'}; goals met: {proc.returncode == 0}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
