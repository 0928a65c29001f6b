"""Latency hiding with a remote cut-out model: N images through the fake Replicate server.

    .venv/bin/python bench/replicate_throughput.py [--images 200] [--latency 2] [--concurrency 8]

Ingests N small photos, runs one mask run over all of them with IMGPIPE_SEGMENTER=replicate
against the local fake Replicate server (every prediction takes --latency seconds; the
server runs in its own process, as Replicate runs on its own machines), and prints the wall
time against the ideal N x latency / concurrency.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _memory_instance(dg):  # type: ignore[no-untyped-def]
    from contextlib import nullcontext

    return nullcontext(dg.DagsterInstance.ephemeral())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--instance",
        choices=["sqlite", "memory"],
        default="sqlite",
        help="Dagster instance storage for the run's events",
    )
    args = parser.parse_args()

    import dagster as dg

    from imgpipe_assets.definitions import build_definitions
    from imgpipe_assets.imaging.samples import PRODUCTS, render_sample
    from imgpipe_assets.ingest import ingest_file
    from imgpipe_assets.partitions import range_tags
    from imgpipe_resources.db.migrate import upgrade
    from imgpipe_resources.settings import Settings
    from imgpipe_resources.storage import LocalObjectStore

    tmp = Path(tempfile.mkdtemp(prefix="imgpipe-replicate-bench-"))
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imgpipe_resources.fakes.replicate_server",
            "--latency",
            str(args.latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert fake.stdout is not None
    url = fake.stdout.readline().strip()
    try:
        os.environ.update(
            {
                "IMGPIPE_HOME": str(tmp / "home"),
                "IMGPIPE_SEGMENTER": "replicate",
                "REPLICATE_BASE_URL": url,
                "REPLICATE_API_TOKEN": "r8_bench",
                "REPLICATE_CONCURRENCY": str(args.concurrency),
            }
        )
        settings = Settings.from_env()
        upgrade(settings.database_url)
        store = LocalObjectStore(root=str(settings.home))
        photos = tmp / "photos"
        photos.mkdir()
        skus = list(PRODUCTS)
        keys = []
        for i in range(args.images):
            path = photos / f"ITEM-{i:04d}.jpg"
            path.write_bytes(render_sample(skus[i % len(skus)], size=320, seed=i))
            keys.append(str(ingest_file(settings, store, path).partition_key))
        defs = build_definitions(settings)
        instance_cm = dg.instance_for_test() if args.instance == "sqlite" else _memory_instance(dg)
        with instance_cm as instance:
            instance.add_dynamic_partitions("images", keys)
            started = time.perf_counter()
            result = defs.resolve_job_def("mask_job").execute_in_process(
                instance=instance,
                tags=range_tags(keys[0], keys[-1]),
                raise_on_error=False,
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
            wall = time.perf_counter() - started
            if os.environ.get("BENCH_DETAIL"):
                per = [o.metadata for o in result.asset_observations_for_node("mask")]
                seconds = sorted(m["seconds"].value for m in per)
                segment = sorted(m["segment_seconds"].value for m in per)
                print(
                    "per partition s: median",
                    seconds[len(seconds) // 2],
                    "max",
                    seconds[-1],
                    "| in provider: median",
                    segment[len(segment) // 2],
                    "max",
                    segment[-1],
                )
        ideal = args.images * args.latency / args.concurrency
        print(
            f"{args.images} images, {args.latency:.1f} s per prediction, concurrency "
            f"{args.concurrency}: wall {wall:.1f} s, ideal {ideal:.1f} s, ratio "
            f"{wall / ideal:.2f}x; run {'succeeded' if result.success else 'FAILED'}"
        )
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
