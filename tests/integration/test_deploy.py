"""The production instance configuration loads on PostgreSQL and carries its limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"


def test_production_instance_loads_on_postgresql(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.instance.ref import InstanceRef

    url = make_url(postgres_url).set(drivername="postgresql+psycopg2")
    monkeypatch.setenv("DAGSTER_PG_URL", url.render_as_string(hide_password=False))
    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path)))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        instance.add_dynamic_partitions("images", ["A~abababababab"])
        assert instance.get_dynamic_partitions("images") == ["A~abababababab"]
        instance.event_log_storage.set_concurrency_slots("replicate", 2)
        assert instance.event_log_storage.get_concurrency_info("replicate").slot_count == 2
    finally:
        instance.dispose()


def test_run_limits_name_tags_that_imgpipe_runs_carry(small_settings) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from imgpipe_assets.definitions import build_definitions
    from imgpipe_assets.local_run import LOCAL_INSTANCE_YAML

    defs = build_definitions(small_settings)
    carried = {
        (key, value)
        for name in ("mask_job", "render_job", "publish_job")
        for key, value in defs.resolve_job_def(name).tags.items()
    }
    assert ("imgpipe/stage", "mask") in carried and ("imgpipe/stage", "publish") in carried
    for text in ((DEPLOY / "dagster.yaml").read_text(), LOCAL_INSTANCE_YAML):
        limits = yaml.safe_load(text)["concurrency"]["runs"]["tag_concurrency_limits"]
        assert limits
        for limit in limits:
            # A limit on a tag no run carries would silently limit nothing.
            assert (limit["key"], limit["value"]) in carried, limit


def test_embedded_default_instance_dequeues_every_second_under_its_run_limits(
    tmp_path: Path,
) -> None:
    """The embedded default names a run coordinator only for its dequeue interval; the run
    limits under `concurrency: runs:` must still be the ones the daemon applies."""
    from imgpipe_assets.local_run import local_instance

    instance = local_instance(tmp_path / "dagster")
    try:
        assert instance.run_coordinator.dequeue_interval_seconds == 1  # type: ignore[attr-defined]
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 4
        stages = {(lim["key"], lim["value"]): lim["limit"] for lim in queue.tag_concurrency_limits}
        assert stages == {("imgpipe/stage", "mask"): 1, ("imgpipe/stage", "render"): 1}
    finally:
        instance.dispose()
