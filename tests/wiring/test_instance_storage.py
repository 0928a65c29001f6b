"""The embedded default's event log: Dagster's SQLite files, written with reused connections."""

import logging
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from imgpipe_assets.instance_storage import PooledSqliteEventLogStorage
from imgpipe_assets.local_run import local_instance

parts = dg.DynamicPartitionsDefinition(name="things")


@dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run())
def thing(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    for key in context.partition_keys:
        context.log_event(
            dg.AssetObservation(asset_key="thing", partition=key, metadata={"k": key})
        )
    return dg.MaterializeResult(metadata={"partitions": len(context.partition_keys)})


def _user_event(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None,
        level=logging.INFO,
        user_message=message,
        run_id=run_id,
        timestamp=time.time(),
        step_key=None,
        job_name=None,
        dagster_event=None,
    )


def test_local_instance_writes_what_the_stock_storage_reads(tmp_path: Path) -> None:
    instance = local_instance(tmp_path / "dagster")
    try:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        keys = [f"t{i:03d}" for i in range(12)]
        instance.add_dynamic_partitions("things", keys)
        job = dg.Definitions(assets=[thing], jobs=[dg.define_asset_job("j", [thing])])
        result = job.resolve_job_def("j").execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
        )
        assert result.success
        # Read while the writer's index connection is still open, by Dagster's own storage.
        stock = SqliteEventLogStorage(str(tmp_path / "dagster" / "history" / "runs"))
        records = stock.fetch_materializations(dg.AssetKey("thing"), limit=100).records
        assert sorted(r.partition_key for r in records) == keys
        observed = stock.fetch_observations(dg.AssetKey("thing"), limit=100).records
        assert sorted(r.partition_key for r in observed) == keys
        logged = stock.get_logs_for_run(result.run_id)
        assert any(e.dagster_event_type == DagsterEventType.RUN_SUCCESS for e in logged)
        assert stock.get_materialized_partitions(dg.AssetKey("thing")) == set(keys)
    finally:
        instance.dispose()


def test_a_run_written_with_reused_connections_reaches_a_watcher(tmp_path: Path) -> None:
    """The UI follows a run's log by watching the run's own file: it must change per write."""
    base = str(tmp_path / "runs")
    writer = PooledSqliteEventLogStorage(base)
    watcher = SqliteEventLogStorage(base)
    run_id = str(uuid.uuid4())
    seen: list[str] = []
    try:
        writer.store_event(_user_event(run_id, "first"))
        watcher.watch(run_id, None, lambda event, _cursor: seen.append(event.user_message))
        for n in range(3):
            writer.store_event(_user_event(run_id, f"later {n}"))
        deadline = time.monotonic() + 30
        while "later 2" not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "later 2" in seen, seen
    finally:
        watcher.dispose()
        writer.dispose()


def test_wipe_leaves_no_handle_on_deleted_run_files(tmp_path: Path) -> None:
    storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    run_id = str(uuid.uuid4())
    storage.store_event(_user_event(run_id, "before"))
    storage.wipe()
    assert storage.get_logs_for_run(run_id) == []
    storage.store_event(_user_event(run_id, "after"))
    assert [e.user_message for e in storage.get_logs_for_run(run_id)] == ["after"]
    storage.dispose()


def test_on_another_dagster_version_the_stock_storage_does_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written for one Dagster minor version: on another it warns once and hands every
    connection to Dagster's own code, and the instance still works."""
    from imgpipe_assets import instance_storage

    assert instance_storage.pooling_fits()  # the Dagster these tests run with
    assert not instance_storage.pooling_fits("1.14.0")
    monkeypatch.setattr(instance_storage, "pooling_fits", lambda: False)
    with pytest.warns(UserWarning, match="Dagster's own SQLite event log does the work"):
        storage = PooledSqliteEventLogStorage(str(tmp_path / "runs"))
    try:
        run_id = str(uuid.uuid4())
        storage.store_event(_user_event(run_id, "hello"))
        assert not storage._engines  # nothing pooled
        stock = SqliteEventLogStorage(str(tmp_path / "runs"))
        assert [e.user_message for e in stock.get_logs_for_run(run_id)] == ["hello"]
    finally:
        storage.dispose()
