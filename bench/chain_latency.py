"""What automation costs per image: ingest -> published, under `dagster dev` (webserver + daemon).

    .venv/bin/python bench/chain_latency.py [--images N] [--rounds R] [--spread S] [--events]

Starts `dagster dev` on a temporary instance and data directory, then R times: ingests N
sample photos at once, waits until every auto-published job is DONE, and prints when each
run was requested, started and ended, so the cost of the sensor -> run chain can be read
apart from the imaging work. The first round also renders each theme's background (once
per theme version); the later ones are what a shop's everyday photo costs.

Each round waits a random 0..S seconds (``--spread``, 5 by default, seeded) before its
ingest: a shop's photo arrives at any moment of the daemon's 5 s sensor loop, while a round
that started the moment the last was published would always land at the same moment of it.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1, help="photos per ingest")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="ingests one after another on one instance: the first pays for each theme's "
        "background, the later ones are a shop's everyday photo",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=5.0,
        help="wait a random 0..S s before each ingest (the daemon's sensor loop is 5 s)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=3199)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--events", action="store_true", help="print each run's events, timed from its start"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="imgpipe-bench-"))
    from bench.devserver import BIN, bench_env, dagster_dev, shipped_looks

    env = bench_env(tmp, IMGPIPE_THEMES=str(shipped_looks(tmp / "themes.yaml")))
    from imgpipe_assets.imaging.samples import PRODUCTS, render_sample

    skus = list(PRODUCTS)
    batches = []
    for r in range(args.rounds):
        photos = tmp / f"photos-{r}"
        photos.mkdir()
        for i in range(r * args.images, (r + 1) * args.images):
            sku = skus[i % len(skus)]
            (photos / f"{sku}-{i}.jpg").write_bytes(render_sample(sku, seed=i))
        batches.append(photos)

    try:
        with dagster_dev(env, tmp, args.port):
            import dagster as dg
            from sqlalchemy import create_engine, text

            engine = create_engine(f"sqlite:///{tmp / 'home' / 'imgpipe.db'}")
            os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]
            instance = dg.DagsterInstance.get()
            totals = []
            arrivals = random.Random(args.seed)
            for r, photos in enumerate(batches):
                time.sleep(arrivals.uniform(0.0, args.spread))
                seen = {rec.dagster_run.run_id for rec in instance.get_run_records()}
                t0 = time.time()
                subprocess.run(
                    [BIN / "imgpipe", "ingest", str(photos)],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                t_ingested = time.time()
                expected = 2 * args.images * (r + 1)  # two themes publish automatically
                done = 0
                while time.time() - t0 < args.timeout:
                    with engine.connect() as conn:
                        done = conn.execute(
                            text("select count(*) from jobs where status='DONE'")
                        ).scalar()
                    if done and done >= expected:
                        break
                    time.sleep(0.2)
                t1 = time.time()
                totals.append(t1 - t0)
                print(
                    f"round {r + 1}: {args.images} photo(s); ingest -> all auto-published "
                    f"jobs DONE: {t1 - t0:.1f} s ({done} DONE); ingest command returned at "
                    f"{t_ingested - t0:.1f} s"
                )
                _print_runs(instance, seen, t0, args)
            later = sorted(totals[1:])
            if later:
                print(
                    f"first photo(s) {totals[0]:.1f} s; later ones: "
                    + ", ".join(f"{t:.1f}" for t in totals[1:])
                    + f" s (median {later[len(later) // 2]:.1f} s, "
                    f"{sum(t <= 15.0 for t in later)} of {len(later)} within 15 s)"
                )
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    return 0


def _print_runs(instance, seen: set[str], t0: float, args: argparse.Namespace) -> None:
    """The round's runs: when each was requested, started and ended, from the ingest's start."""
    # The last run may still be writing its end events: wait for it to finish.
    while time.time() - t0 < args.timeout and not all(
        r.dagster_run.is_finished for r in instance.get_run_records()
    ):
        time.sleep(0.2)
    print(
        f"  {'run':16s} {'requested':>9s} {'started':>8s} {'ended':>6s} "
        f"{'queued s':>9s} {'work s':>7s}"
    )
    records = [r for r in instance.get_run_records() if r.dagster_run.run_id not in seen]
    for rec in sorted(records, key=lambda r: r.create_timestamp):
        start, end = rec.start_time, rec.end_time
        created = rec.create_timestamp.timestamp()
        if start and end:
            print(
                f"  {rec.dagster_run.job_name:16s} {created - t0:9.1f} {start - t0:8.1f} "
                f"{end - t0:6.1f} {start - created:9.1f} {end - start:7.1f}  "
                f"{rec.dagster_run.status.value}"
            )
            if args.events:
                _print_events(instance, rec.dagster_run.run_id, start)


def _print_events(instance, run_id: str, start: float) -> None:
    """Each event of one run with its time from the run's start (where a run's time goes)."""
    for entry in instance.all_logs(run_id):
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
        step = entry.step_key or ""
        print(f"      {entry.timestamp - start:6.2f}  {kind:28s} {step}")


if __name__ == "__main__":
    raise SystemExit(main())
