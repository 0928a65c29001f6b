"""Sensors evaluated as the daemon would: real ticks on a real (test) instance."""

import json
from pathlib import Path

import dagster as dg
import pytest

from imgpipe_assets.definitions import build_definitions
from imgpipe_assets.ingest import ingest_file
from imgpipe_assets.partitions import multi_key
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from sensors.chain import chain_sensor
from sensors.intake import intake_sensor
from tests.conftest import ingest


def _tick(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    cursor: str | None,
):  # type: ignore[no-untyped-def]
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        resources=defs.resources,
    )
    return sensor.evaluate_tick(context)


def _apply_partitions(instance: dg.DagsterInstance, result) -> None:  # type: ignore[no-untyped-def]
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_intake_sensor_adds_partitions_and_requests_one_mask_run_per_batch(
    small_settings: Settings, sample_photos: dict
) -> None:
    defs = build_definitions(small_settings)
    keys = ingest(small_settings, list(sample_photos.values()))
    store = LocalObjectStore(root=str(small_settings.home))
    with dg.instance_for_test() as instance:
        first = _tick(intake_sensor, instance, defs, None)
        assert first.cursor == str(len(keys))
        (request,) = first.run_requests
        assert request.job_name == "mask_job"
        assert request.tags["dagster/asset_partition_range_start"] == keys[0]
        assert request.tags["dagster/asset_partition_range_end"] == keys[-1]
        assert request.run_key == f"mask:{keys[0]}:{keys[-1]}"
        (add,) = first.dynamic_partitions_requests
        assert list(add.partition_keys) == keys
        _apply_partitions(instance, first)

        # Nothing new: the tick skips and says why.
        idle = _tick(intake_sensor, instance, defs, first.cursor)
        assert not idle.run_requests
        assert "no new photos" in (idle.skip_message or "")

        # Re-ingesting the identical photo records nothing, so the sensor sees nothing.
        again = ingest_file(small_settings, store, sample_photos["RING-0001"])
        assert again.status == "DUPLICATE"
        assert not _tick(intake_sensor, instance, defs, first.cursor).run_requests

        # A replay from cursor 0 (a lost cursor) adds no partition and launches nothing.
        replay = _tick(intake_sensor, instance, defs, None)
        assert not replay.run_requests and not replay.dynamic_partitions_requests
        assert replay.cursor == str(len(keys))


def test_intake_starts_small_takes_full_batches_while_busy_and_shrinks_the_last_ones(
    small_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.test_utils import create_run_for_test

    from imgpipe_assets.imaging.samples import render_sample
    from sensors import intake

    monkeypatch.setattr(intake, "FIRST_BATCH", 2)
    monkeypatch.setattr(intake, "INTAKE_BATCH", 5)
    paths = []
    for i in range(21):
        paths.append(tmp_path / f"ITEM-{i}.jpg")
        paths[-1].write_bytes(render_sample("RING-0001", size=48, seed=i))
    keys = ingest(small_settings, paths)
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        first = _tick(intake_sensor, instance, defs, None)  # idle: the small batch
        assert list(first.dynamic_partitions_requests[0].partition_keys) == keys[:2]
        _apply_partitions(instance, first)
        create_run_for_test(instance, job_name="mask_job", status=dg.DagsterRunStatus.STARTED)
        sizes, cursor = [], first.cursor
        while True:
            result = _tick(intake_sensor, instance, defs, cursor)
            if not result.run_requests:
                break
            added = list(result.dynamic_partitions_requests[0].partition_keys)
            assert added == keys[2 + sum(sizes) : 2 + sum(sizes) + len(added)]
            sizes.append(len(added))
            _apply_partitions(instance, result)
            cursor = result.cursor
        # 19 waiting while busy: full batches while two or more wait, then half, then
        # the small batch's floor.
        assert sizes == [5, 5, 5, 2, 2]
        assert "no new photos" in (result.skip_message or "")


def test_single_new_photo_gets_a_single_partition_run(
    small_settings: Settings, sample_photos: dict
) -> None:
    defs = build_definitions(small_settings)
    (key,) = ingest(small_settings, [sample_photos["WATCH-0002"]])
    with dg.instance_for_test() as instance:
        result = _tick(intake_sensor, instance, defs, None)
        (request,) = result.run_requests
        assert request.partition_key == key
        assert request.run_key == f"mask:{key}"


def test_chain_sensor_follows_masks_then_composites(
    small_settings: Settings, sample_photos: dict, tmp_path: Path
) -> None:
    defs = build_definitions(small_settings)
    (key,) = ingest(small_settings, [sample_photos["PENDANT-0003"]])
    assert key
    with dg.instance_for_test() as instance:
        assert "no new masks" in (_tick(chain_sensor, instance, defs, None).skip_message or "")
        instance.add_dynamic_partitions("images", [key])
        assert (
            defs.resolve_job_def("mask_job")
            .execute_in_process(instance=instance, partition_key=key)
            .success
        )

        tick = _tick(chain_sensor, instance, defs, None)
        (render,) = tick.run_requests
        assert render.job_name == "render_job"
        assert render.tags["dagster/asset_partition_range_start"] == f"{key}|white"
        assert render.tags["dagster/asset_partition_range_end"] == f"{key}|night"
        cursor = json.loads(tick.cursor or "{}")
        assert cursor["mask"] > 0

        assert (
            defs.resolve_job_def("render_job")
            .execute_in_process(instance=instance, tags=render.tags)
            .success
        )
        tick2 = _tick(chain_sensor, instance, defs, tick.cursor)
        (publish,) = tick2.run_requests  # white and marble publish; night awaits review
        assert publish.job_name == "auto_publish_job"
        keys = publish.run_config["ops"]["auto_publish"]["config"]["partitions"]
        assert sorted(keys) == sorted([str(multi_key(key, "white")), str(multi_key(key, "marble"))])
        result = defs.resolve_job_def("auto_publish_job").execute_in_process(
            instance=instance, run_config=publish.run_config
        )
        assert result.success
        assert len(list((small_settings.home / "outbox").rglob("*.json"))) == 2
        # Each is recorded as a shopify_media materialisation of its own partition.
        assert instance.get_materialized_partitions(dg.AssetKey("shopify_media")) == set(keys)


def test_auto_publishing_covers_many_images_per_run_and_never_a_review_theme(
    small_settings: Settings, sample_photos: dict
) -> None:
    from sensors.chain import publish_requests

    class Record:
        def __init__(self, key: str, storage_id: int) -> None:
            self.partition_key, self.storage_id = key, storage_id

    names = ["white", "marble", "night"]
    records = [
        Record(str(multi_key(f"SKU-{i}~{i:012x}", t)), i * 3 + j)
        for i in range(200)
        for j, t in enumerate(names)
    ]
    requests = publish_requests(records, names, auto={0, 1})  # type: ignore[arg-type]
    batches = [r.run_config["ops"]["auto_publish"]["config"]["partitions"] for r in requests]
    assert [len(b) for b in batches] == [150, 150, 100]  # 400 composites in 3 runs, not 200
    assert not any(k.endswith("|night") for b in batches for k in b)

    defs = build_definitions(small_settings)
    (key,) = ingest(small_settings, [sample_photos["RING-0001"]])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        result = defs.resolve_job_def("auto_publish_job").execute_in_process(
            instance=instance,
            run_config={
                "ops": {"auto_publish": {"config": {"partitions": [str(multi_key(key, "night"))]}}}
            },
            raise_on_error=False,
        )
        assert not result.success  # a review theme is never published behind a person's back
    assert not list((small_settings.home / "outbox").rglob("*.json"))


def test_chain_sensor_renders_an_intake_batch_in_one_run(
    small_settings: Settings, sample_photos: dict
) -> None:
    defs = build_definitions(small_settings)
    keys = ingest(small_settings, list(sample_photos.values()))
    with dg.instance_for_test() as instance:
        intake = _tick(intake_sensor, instance, defs, None)
        _apply_partitions(instance, intake)
        (mask_run,) = intake.run_requests
        assert (
            defs.resolve_job_def("mask_job")
            .execute_in_process(instance=instance, tags=mask_run.tags)
            .success
        )
        # While the run that made the masks is still going (its materialisations arrive one
        # by one, in no order), the sensor waits instead of splitting the batch.
        real_get_run = instance.get_run_by_id

        def still_running(run_id: str):  # type: ignore[no-untyped-def]
            run = real_get_run(run_id)
            return run.with_status(dg.DagsterRunStatus.STARTED) if run else None

        instance.get_run_by_id = still_running  # type: ignore[method-assign]
        waiting = _tick(chain_sensor, instance, defs, None)
        assert not waiting.run_requests
        instance.get_run_by_id = real_get_run  # type: ignore[method-assign]
        (render,) = _tick(chain_sensor, instance, defs, waiting.cursor).run_requests
        assert render.tags["dagster/asset_partition_range_start"] == f"{keys[0]}|white"
        assert render.tags["dagster/asset_partition_range_end"] == f"{keys[-1]}|night"
