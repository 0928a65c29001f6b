"""The intake sensor's tick with thousands of photos waiting.

    .venv/bin/python bench/sensor_tick.py [--pending 10000] [--database URL]

Records ``--pending`` photos in the intake table (as the webhook receiver or the 3JMS poller
would: one announcement each), then evaluates ``intake_sensor`` tick after tick on a SQLite
Dagster instance until the backlog is drained, as the daemon would. Prints the first tick's
time, the slowest tick, and the intake rate the sensor sustains at its interval. Each tick
is bounded (INTAKE_BATCH records; FIRST_BATCH while no mask run is in flight) so its time
does not grow with the backlog. After the first tick a started mask run stands for the one
the daemon would have launched.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
from dagster._core.test_utils import create_run_for_test  # noqa: E402

from imgpipe_assets.definitions import build_definitions  # noqa: E402
from imgpipe_resources.db import intake  # noqa: E402
from imgpipe_resources.db.engine import session_scope  # noqa: E402
from imgpipe_resources.db.migrate import upgrade  # noqa: E402
from imgpipe_resources.settings import Settings  # noqa: E402
from sensors.intake import INTAKE_BATCH, intake_sensor  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--database", help="jobs database URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"IMGPIPE_HOME": str(Path(tmp) / "home")}
        if args.database:
            env["IMGPIPE_DATABASE_URL"] = args.database
        settings = Settings.from_env(env)
        upgrade(settings.database_url)
        t0 = time.perf_counter()
        with session_scope(settings.database_url) as session:
            for i in range(args.pending):
                sha = hashlib.sha256(f"photo {i}".encode()).hexdigest()
                intake.record(
                    session,
                    event="image.created",
                    sku=f"SKU-{i:06d}",
                    sha256=sha,
                    source="webhook",
                    image_url=f"https://jms.example/{i}.jpg",
                )
        print(f"{args.pending} photos recorded in {time.perf_counter() - t0:.1f} s")
        defs = build_definitions(settings)
        ticks: list[float] = []
        cursor = None
        (Path(tmp) / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(Path(tmp) / "dagster")) as instance:
            while True:
                context = dg.build_sensor_context(
                    instance=instance,
                    instance_ref=instance.get_ref(),
                    cursor=cursor,
                    definitions=defs,
                    resources=defs.resources,
                )
                started = time.perf_counter()
                result = intake_sensor.evaluate_tick(context)
                # What the daemon does with the result: add the partitions, start the run.
                for request in result.dynamic_partitions_requests or []:
                    instance.add_dynamic_partitions("images", list(request.partition_keys or []))
                if result.run_requests and len(ticks) == 0:
                    create_run_for_test(
                        instance, job_name="mask_job", status=dg.DagsterRunStatus.STARTED
                    )
                ticks.append(time.perf_counter() - started)
                if not result.run_requests:
                    break
                cursor = result.cursor
            partitions = len(instance.get_dynamic_partitions("images"))
        work_ticks = ticks[:-1]
        print(
            f"intake_sensor, {INTAKE_BATCH} photos per tick: {len(work_ticks)} ticks to drain "
            f"{partitions} partitions"
        )
        print(
            f"  first tick {work_ticks[0]:.2f} s, median {statistics.median(work_ticks):.2f} s, "
            f"slowest {max(work_ticks):.2f} s (the sensor timeout is 60 s)"
        )
        interval = intake_sensor.minimum_interval_seconds or 30
        rate = INTAKE_BATCH / (interval + statistics.median(work_ticks))
        print(f"  sustained intake at the {interval} s interval: {rate:.0f} photos/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
