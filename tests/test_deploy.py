"""The production instance configuration loads on PostgreSQL and carries its limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


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
