"""Cost of one Dagster event on the embedded default's SQLite instance, stock against pooled.

    .venv/bin/python bench/event_log.py [--events 300]

For each event log storage (Dagster's ``SqliteEventLogStorage`` and imgpipe's
``PooledSqliteEventLogStorage``), a fresh instance runs one range run over ``--events``
partitions of an asset that logs an observation per partition, as imgpipe's range runs do;
then Dagster records a materialisation per partition. Prints the wall and CPU time per
observation and for the whole run. Each storage runs in its own process.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one(kind: str, events: int) -> None:
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from imgpipe_assets.instance_storage import event_log_config

    home = Path(tempfile.mkdtemp(prefix="imgpipe-events-"))
    config = "telemetry:\n  enabled: false\n"
    if kind == "pooled":
        config += event_log_config(str(home))
    (home / "dagster.yaml").write_text(config)
    parts = dg.DynamicPartitionsDefinition(name="p")
    timing: dict[str, float] = {}

    @dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run())
    def a(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        wall, cpu = time.perf_counter(), time.process_time()
        for key in context.partition_keys:
            context.log_event(
                dg.AssetObservation(asset_key="a", partition=key, metadata={"key": key})
            )
        timing["wall"], timing["cpu"] = time.perf_counter() - wall, time.process_time() - cpu
        return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    storage = type(instance.event_log_storage).__name__
    keys = [f"k{i:05d}" for i in range(events)]
    instance.add_dynamic_partitions("p", keys)
    job = dg.Definitions(assets=[a], jobs=[dg.define_asset_job("j", [a])]).resolve_job_def("j")
    wall, cpu = time.perf_counter(), time.process_time()
    job.execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"{storage:28s} per observation {timing['wall'] / events * 1000:5.1f} ms wall "
        f"{timing['cpu'] / events * 1000:5.1f} ms CPU; whole run ({events} planned events, "
        f"{events} observations, {events} materialisations) {wall:5.1f} s wall {cpu:5.1f} s CPU"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--only", choices=["stock", "pooled"])
    args = parser.parse_args()
    if args.only:
        one(args.only, args.events)
        return 0
    for kind in ("stock", "pooled"):
        cmd = [sys.executable, __file__, "--only", kind, "--events", str(args.events)]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
