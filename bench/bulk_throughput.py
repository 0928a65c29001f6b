"""Bulk throughput: N photos x every theme through the real deployment, against the bare core.

    .venv/bin/python bench/bulk_throughput.py [--images 1000] [--size 1400]

1. The bare imaging core does the work alone, one photo after another in this process:
   decode, cut-out, every theme rendered and encoded, cut-out PNG and composites written
   to disk.
2. The same photos go through imgpipe under `dagster dev` (webserver, daemon, SQLite
   instance, default run launcher) on the embedded default: `imgpipe ingest`, then the
   intake sensor's mask runs and the chain sensor's render runs, until every composite
   exists. Themes are set to `publish: review` so the figure is intake -> composites;
   publishing is measured by bench/chain_latency.py.

Prints both wall times and their ratio, and the runs Dagster launched.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_photos(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` distinct photos: the three samples, each copy with its own sensor noise."""
    from imgpipe_assets.imaging.samples import PRODUCTS, render_sample

    folder.mkdir(parents=True)
    bases = {
        sku: np.asarray(Image.open(io.BytesIO(render_sample(sku, size=size)))).astype(np.int16)
        for sku in PRODUCTS
    }
    rng = np.random.default_rng(0)
    paths = []
    skus = list(bases)
    for i in range(count):
        sku = skus[i % len(skus)]
        noisy = bases[sku] + rng.integers(-2, 3, size=(size, size, 1), dtype=np.int16)
        path = folder / f"{sku}-{i:05d}.jpg"
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=92)
        paths.append(path)
    return paths


def bare_core(photos: list[Path], themes_path: Path, out: Path) -> float:
    from imgpipe_assets.imaging import pipeline
    from imgpipe_assets.imaging.segment import load_segmenter
    from imgpipe_assets.themes import load_themes
    from imgpipe_resources.settings import Settings

    themes = list(load_themes(themes_path).values())
    segmenter = load_segmenter(Settings.from_env().models_dir)
    work_px = pipeline.work_size(themes)
    backdrops = {t.name: pipeline.background(t) for t in themes}
    out.mkdir(parents=True)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for path in photos:
        cut = pipeline.cut_out(path.read_bytes(), segmenter, work_px=work_px)
        (out / f"{path.stem}.png").write_bytes(cut.png())
        for name, rendered in pipeline.render_all(cut, themes, backdrops).items():
            (out / f"{path.stem}-{name}.jpg").write_bytes(rendered.data)
    wall = time.perf_counter() - t0
    print(f"  bare core CPU: {time.process_time() - cpu0:.1f} s (every thread)")
    return wall


def pipeline_run(photos_dir: Path, count: int, themes_path: Path, tmp: Path, port: int) -> float:
    from bench.devserver import BIN, bench_env, dagster_dev

    env = bench_env(tmp, IMGPIPE_THEMES=str(themes_path))
    with dagster_dev(env, tmp, port) as dev:
        cpu_before = dev.cpu_seconds()
        from sqlalchemy import create_engine, text

        t0, started = time.perf_counter(), time.time()
        subprocess.run(
            [BIN / "imgpipe", "ingest", str(photos_dir)], env=env, check=True, capture_output=True
        )
        ingested = time.perf_counter() - t0
        engine = create_engine(f"sqlite:///{tmp / 'home' / 'imgpipe.db'}")
        expected = count * 3
        done = failures = 0
        while True:
            with engine.connect() as conn:
                done = (
                    conn.execute(
                        text("select count(*) from jobs where composite_key is not null")
                    ).scalar()
                    or 0
                )
                failed = conn.execute(text("select count(*) from jobs where status='FAILED'"))
                failures = failed.scalar() or 0
            if done + failures >= expected:
                break
            time.sleep(1)
        wall = time.perf_counter() - t0
        time.sleep(10)  # the last run worker exits and is reaped
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in dev.cpu_seconds().items()}
        print(f"  ingest (copy + sha256 + intake rows): {ingested:.1f} s, included")
        print(f"  composites: {done} of {expected}, failed jobs: {failures}")
        import dagster as dg

        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
        runs = dg.DagsterInstance.get().get_run_records()
        by_job: dict[str, list[float]] = {}
        print("  runs (seconds from ingest): job, created, start, end, partitions")
        for rec in sorted(runs, key=lambda r: r.start_time or 0):
            if rec.start_time and rec.end_time:
                job = rec.dagster_run.job_name
                by_job.setdefault(job, []).append(rec.end_time - rec.start_time)
                first = rec.dagster_run.tags.get("dagster/asset_partition_range_start", "")
                last = rec.dagster_run.tags.get("dagster/asset_partition_range_end", "")
                span = f"{first.split('~')[0]} .. {last.split('~')[0]}" if first else "one"
                print(
                    f"    {job:18s} {rec.create_timestamp.timestamp() - started:7.1f}"
                    f" {rec.start_time - started:7.1f} {rec.end_time - started:7.1f}"
                    f"  {span}"
                )
        for job, spans in sorted(by_job.items()):
            print(f"  {job}: {len(spans)} runs, {sum(spans):.1f} s of run time")
        roles = ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]))
        print(f"  CPU seconds from ingest: {sum(cpu.values()):.1f} ({roles})")
        return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=1400, help="photo side in pixels")
    parser.add_argument("--port", type=int, default=3198)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--core-seconds",
        type=float,
        help="skip the bare-core pass and compare with this earlier figure for the same photos",
    )
    args = parser.parse_args()
    from bench.devserver import shipped_looks

    tmp = Path(tempfile.mkdtemp(prefix="imgpipe-bulk-"))
    try:
        photos = make_photos(tmp / "photos", args.images, args.size)
        themes = shipped_looks(tmp / "themes.yaml", publish="review")
        print(f"{args.images} photos of {args.size} x {args.size} px, 3 themes at 2048 px")
        core = args.core_seconds or bare_core(photos, themes, tmp / "core")
        source = "given" if args.core_seconds else "measured"
        print(
            f"bare core: {core:.1f} s ({core / args.images:.3f} s per photo, all themes; {source})"
        )
        print("pipeline under dagster dev:")
        wall = pipeline_run(tmp / "photos", args.images, themes, tmp, args.port)
        print(f"pipeline: {wall:.1f} s ({wall / args.images:.3f} s per photo)")
        print(f"ratio pipeline / bare core: {wall / core:.2f}x")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
