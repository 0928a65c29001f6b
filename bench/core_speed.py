"""Speed of the bare imaging core, without Dagster: decode, cut-out, render every theme, encode.

    .venv/bin/python bench/core_speed.py [--size 1400] [--repeat 3]

Prints per-image seconds for each stage on a sample photo, and the floor (decode + encode of
the same outputs) the core is compared with.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imgpipe_assets.imaging import pipeline  # noqa: E402
from imgpipe_assets.imaging.decode import decode_rgb  # noqa: E402
from imgpipe_assets.imaging.encode import encode  # noqa: E402
from imgpipe_assets.imaging.samples import render_sample  # noqa: E402
from imgpipe_assets.imaging.segment import load_segmenter  # noqa: E402
from imgpipe_assets.themes import load_themes  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1400, help="sample photo side in pixels")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = Settings.from_env()
    themes = list(load_themes(settings.themes_path).values())
    segmenter = load_segmenter(settings.models_dir)
    data = render_sample("WATCH-0002", size=args.size)
    backgrounds = {t.name: pipeline.background(t) for t in themes}
    timings: dict[str, list[float]] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = fn()
        timings.setdefault(name, []).append(time.perf_counter() - t)
        return out

    for _ in range(args.repeat):
        cut = timed("decode + cut-out", lambda: pipeline.cut_out(data, segmenter))
        for t in themes:
            timed(
                "render + encode (per theme)",
                lambda t=t, c=cut: pipeline.render(c.rgb, c.alpha, backgrounds[t.name], t),
            )
        timed("floor: decode", lambda: decode_rgb(data))
        for t in themes:
            timed(
                "floor: encode (per theme)",
                lambda t=t: encode(backgrounds[t.name], t.output_format, t.quality),
            )
    print(
        f"sample {args.size}x{args.size} JPEG, {len(themes)} themes at "
        f"{themes[0].canvas[0]}x{themes[0].canvas[1]}, segmenter {segmenter.name}"
    )
    for name, values in timings.items():
        print(f"  {name:28s} median {statistics.median(values):.3f} s")
    per_image = statistics.median(timings["decode + cut-out"]) + len(themes) * statistics.median(
        timings["render + encode (per theme)"]
    )
    floor = statistics.median(timings["floor: decode"]) + len(themes) * statistics.median(
        timings["floor: encode (per theme)"]
    )
    print(
        f"  per image, all themes        {per_image:.3f} s (floor {floor:.3f} s, "
        f"ratio {per_image / floor:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
