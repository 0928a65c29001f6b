"""Speed and memory of the bare imaging core, without Dagster.

    .venv/bin/python bench/core_speed.py [--megapixels 12] [--repeat 5]
    .venv/bin/python bench/core_speed.py --memory 50     # peak RSS for a 50 MP photo

A camera-sized JPEG of a sample product goes through decode, cut-out (model, edge
refinement, decontamination) and the three looks of themes.yaml (composite + encode). Prints
per-stage medians and the floor it is compared with: decoding the photo in full and encoding
the same number of composites. ``--memory`` runs one photo in a fresh process and prints its
peak resident memory.
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from imgpipe_assets.imaging import pipeline  # noqa: E402
from imgpipe_assets.imaging.decode import decode_rgb  # noqa: E402
from imgpipe_assets.imaging.encode import encode  # noqa: E402
from imgpipe_assets.imaging.samples import render_sample  # noqa: E402
from imgpipe_assets.imaging.segment import load_segmenter  # noqa: E402
from imgpipe_assets.themes import load_themes  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402


def camera_jpeg(megapixels: float, sku: str = "WATCH-0002") -> bytes:
    """A sample product photo at a camera's size and aspect (4:3), JPEG quality 92, with
    fine sensor-like noise so the encoder sees real detail."""
    w = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = round(w * 3 / 4)
    base = Image.open(io.BytesIO(render_sample(sku, size=1400))).convert("RGB")
    canvas = Image.new("RGB", (w, h), base.getpixel((2, 2)))
    side = int(h * 0.95)
    canvas.paste(base.resize((side, side), Image.Resampling.BICUBIC), ((w - side) // 2, 0))
    arr = np.asarray(canvas).astype(np.int16)
    noise = np.random.default_rng(0).integers(-3, 4, size=(h, w, 1), dtype=np.int16)
    arr = np.clip(arr + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def high_water_kb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the
    parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory(megapixels: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(camera_jpeg(megapixels))
        code = (
            f"import sys, resource; sys.path.insert(0, {str(ROOT)!r})\n"
            "from pathlib import Path\n"
            "from bench.core_speed import run_once\n"
            f"data = Path({str(photo)!r}).read_bytes()\n"
            "from bench.core_speed import high_water_kb\n"
            "base = high_water_kb()\n"
            "run_once(data)\n"
            "print(base, high_water_kb())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
    base, peak = (int(v) for v in out.stdout.split()[-2:])
    print(
        f"{megapixels:g} MP photo, {len(_themes())} themes: peak RSS {peak / 1024:.0f} MB "
        f"(of which {base / 1024:.0f} MB before the photo: interpreter, libraries, its bytes)"
    )
    return 0


def _themes():  # type: ignore[no-untyped-def]
    # The shipped looks, as measured since the start (bench/channels.py covers the presets).
    from bench.devserver import LOOKS

    return [t for t in load_themes(Settings.from_env().themes_path).values() if t.name in LOOKS]


def run_once(data: bytes) -> None:
    themes = _themes()
    segmenter = load_segmenter(Settings.from_env().models_dir)
    cut = pipeline.cut_out(data, segmenter, work_px=pipeline.work_size(themes))
    pipeline.render_all(cut, themes, {t.name: pipeline.background(t) for t in themes})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memory", type=float, metavar="MP", help="peak memory for one photo")
    args = parser.parse_args()
    if args.memory:
        return memory(args.memory)
    themes = _themes()
    segmenter = load_segmenter(Settings.from_env().models_dir)
    data = camera_jpeg(args.megapixels)
    work_px = pipeline.work_size(themes)
    backgrounds = {t.name: pipeline.background(t) for t in themes}
    timings: dict[str, list[float]] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        out = fn()
        timings.setdefault(name, []).append(time.perf_counter() - t)
        return out

    pipeline.cut_out(data, segmenter, work_px=work_px)  # warm the model
    for _ in range(args.repeat):
        cut = timed("decode + cut-out", lambda: pipeline.cut_out(data, segmenter, work_px=work_px))
        rendered = timed(
            "render + encode (all themes)",
            lambda c=cut: pipeline.render_all(c, themes, backgrounds),
        )
        outs = [rendered[t.name] for t in themes]
        timed("floor: full decode", lambda: decode_rgb(data))
        for t, out in zip(themes, outs, strict=True):
            timed(
                "floor: encode (per theme)",
                lambda t=t, o=out: encode(o.image, t.output_format, t.quality, t.progressive),
            )
    with Image.open(io.BytesIO(data)) as im:
        size = im.size
    print(
        f"{size[0]}x{size[1]} JPEG ({size[0] * size[1] / 1e6:.1f} MP), {len(themes)} themes "
        f"at {themes[0].canvas[0]}x{themes[0].canvas[1]}, segmenter {segmenter.name}, "
        f"cut-out {cut.rgb.shape[1]}x{cut.rgb.shape[0]}"
    )
    for name, values in timings.items():
        print(f"  {name:28s} median {statistics.median(values):.3f} s")
    per_image = statistics.median(timings["decode + cut-out"]) + statistics.median(
        timings["render + encode (all themes)"]
    )
    floor = statistics.median(timings["floor: full decode"]) + len(themes) * statistics.median(
        timings["floor: encode (per theme)"]
    )
    print(
        f"  per image, all themes        {per_image:.3f} s (floor {floor:.3f} s, "
        f"ratio {per_image / floor:.1f}x)"
    )
    print(f"  peak RSS of this process     {high_water_kb() / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
