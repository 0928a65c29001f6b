"""Every figure the issues ask for, measured in one run and printed side by side.

    .venv/bin/python bench/all.py            # about 45 minutes on 2 cores (1,000 photos bulk)
    .venv/bin/python bench/all.py --quick    # about 10 minutes (100 photos bulk)

Runs each bench script in its own process, one after another (they would disturb each
other's timings), keeps their full output in bench/out/, and prints a summary table. Each
row names the script that produced it, for rerunning one figure alone.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"


def run(name: str, args: list[str]) -> str:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    output = proc.stdout + (proc.stderr if proc.returncode else "")
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.txt").write_text(output)
    print(f"  {name} {' '.join(args)}: {time.perf_counter() - started:.0f} s", flush=True)
    return output


def grab(pattern: str, text: str, default: str = "n/a") -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 photos for the bulk figure")
    args = parser.parse_args()
    bulk_images = "100" if args.quick else "1000"
    print("running (full outputs in bench/out/):")
    core = run("core_speed", ["--megapixels", "12", "--repeat", "5"])
    memory = run("core_speed", ["--memory", "50"])
    halo = run("halo", [])
    iou = run("mask_iou", [])
    jewellery = run("jewellery", [])
    remote = run("replicate_throughput", ["--images", "200", "--latency", "2"])
    tick = run("sensor_tick", ["--pending", "10000"])
    events = run("event_log", ["--events", "300"])
    latency = run("chain_latency", ["--images", "1"])
    bulk = run("bulk_throughput", ["--images", bulk_images])

    rows = [
        (
            "core: 12 MP photo -> cut-out + 3 themes at 2048 px",
            "core_speed",
            grab(r"per image, all themes\s+(.*)$", core),
        ),
        (
            "core: floor (full decode + 3 encodes)",
            "core_speed",
            grab(r"floor: full decode\s+median (\S+ s)", core),
        ),
        ("peak memory, 50 MP photo", "core_speed --memory 50", grab(r"peak RSS (\d+ MB)", memory)),
        (
            "halo: edge-band PSNR, model alpha -> shipped cut-out",
            "halo",
            grab(r"model alpha\s+mean\s+(\S+)", halo)
            + " -> "
            + grab(r"backdrop key \(ships\)\s+mean\s+(\S+)", halo)
            + " dB",
        ),
        (
            "mask IoU: plain-background real photos",
            "mask_iou",
            grab(r"real/plain-background\s+\d+\s+(\S+)", iou),
        ),
        ("mask IoU: all real photos", "mask_iou", grab(r"^segmentation\s+\d+\s+(\S+)", iou)),
        (
            "jewellery: IoU, holes open, chains kept, edge error, halo",
            "jewellery",
            grab(r"^jewellery n=\d+ (iou=.*dB)", jewellery),
        ),
        (
            "mask IoU: synthetic / white-or-grey",
            "mask_iou",
            grab(r"^synthetic\s+\d+\s+(\S+)", iou)
            + " / "
            + grab(r"synthetic/white-or-grey\s+\d+\s+(\S+)", iou),
        ),
        (
            "remote latency hiding: 200 x 2 s cut-outs, concurrency 8",
            "replicate_throughput",
            grab(r"(wall .*ratio [\d.]+x)", remote),
        ),
        (
            "intake sensor tick, 10,000 pending photos",
            "sensor_tick",
            grab(r"(first tick .*)$", tick),
        ),
        (
            "one Dagster event on SQLite, stock -> imgpipe's event log",
            "event_log",
            grab(r"^SqliteEventLogStorage\s+per observation .*?(\S+ ms CPU)", events)
            + " -> "
            + grab(r"^PooledSqliteEventLogStorage\s+per observation .*?(\S+ ms CPU)", events),
        ),
        (
            "one photo: ingest -> published under dagster dev",
            "chain_latency",
            grab(r"DONE: (\S+ s)", latency),
        ),
        (
            f"bulk: {bulk_images} photos x 3 themes, bare core",
            "bulk_throughput",
            grab(r"bare core: (.*)$", bulk),
        ),
        (
            f"bulk: {bulk_images} photos x 3 themes, pipeline",
            "bulk_throughput",
            grab(r"^pipeline: (.*)$", bulk),
        ),
        (
            "bulk: pipeline / bare core",
            "bulk_throughput",
            grab(r"ratio pipeline / bare core: (.*)$", bulk),
        ),
        (
            "bulk: CPU seconds, bare core / pipeline by process",
            "bulk_throughput",
            grab(r"bare core CPU: (\S+ s)", bulk)
            + " / "
            + grab(r"CPU seconds from ingest: (.*)$", bulk),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for what, script, figure in rows:
        print(f"{what:{width}s}  {figure}   [{script}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
