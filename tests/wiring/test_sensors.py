"""Sensors evaluated as the daemon would: real ticks on a real (test) instance."""

import json
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_assets.ingest import ingest_file
from imgpipe_assets.partitions import multi_key, range_tags
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from sensors.chain import chain_sensor
from sensors.intake import intake_sensor
from tests.helpers import ingest, run_range


def _jobs(settings: Settings) -> list[Job]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(Job)))


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


def test_chain_sensor_renders_and_publishes_an_image_in_one_run(
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
        # The render run published white and marble itself; night awaits review.
        published = {str(multi_key(key, "white")), str(multi_key(key, "marble"))}
        assert instance.get_materialized_partitions(dg.AssetKey("shopify_media")) == published
        assert len(list((small_settings.home / "outbox").rglob("*.json"))) == 2
        tick2 = _tick(chain_sensor, instance, defs, tick.cursor)
        assert not tick2.run_requests  # nothing left for the chain to do
    jobs = {j.theme: j for j in _jobs(small_settings)}
    assert jobs["night"].status == "AWAITING_REVIEW" and jobs["night"].shopify_media_id is None


def test_composites_a_person_rendered_are_published_per_theme_never_a_review_theme(
    small_settings: Settings, sample_photos: dict
) -> None:
    defs = build_definitions(small_settings)
    keys = ingest(small_settings, [sample_photos["RING-0001"], sample_photos["WATCH-0002"]])
    outbox = small_settings.home / "outbox"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        assert run_range(defs, instance, "mask_job", keys[0], keys[-1]).success
        first, last = str(multi_key(keys[0], "white")), str(multi_key(keys[-1], "night"))
        rendered = dg.materialize(
            list(defs.assets or []),
            selection=["backgrounds", "composite"],  # a person's render, without publishing
            instance=instance,
            resources=defs.resources,
            tags=range_tags(first, last),
        )
        assert rendered.success and not list(outbox.rglob("*.json"))

        cursor = json.dumps({"mask": 10**9})  # the masks' renders are not this test's
        tick = _tick(chain_sensor, instance, defs, cursor)
        ranges = sorted(
            (
                r.tags["dagster/asset_partition_range_start"],
                r.tags["dagster/asset_partition_range_end"],
            )
            for r in tick.run_requests
        )
        # One run per auto-publishing theme over both images; none for the review theme.
        assert ranges == [
            (str(multi_key(keys[0], "marble")), str(multi_key(keys[1], "marble"))),
            (str(multi_key(keys[0], "white")), str(multi_key(keys[1], "white"))),
        ]
        for request in tick.run_requests:
            assert request.job_name == "publish_job" and request.tags["imgpipe/publish"] == "auto"
            run = defs.resolve_job_def("publish_job").execute_in_process(
                instance=instance, tags=request.tags
            )
            assert run.success
        assert len(list(outbox.rglob("*.json"))) == 4

        # The chain's publishing over a review theme leaves it waiting; a person's publishes.
        night = range_tags(str(multi_key(keys[0], "night")), str(multi_key(keys[1], "night")))
        publish = defs.resolve_job_def("publish_job")
        assert publish.execute_in_process(
            instance=instance, tags={**night, "imgpipe/publish": "auto"}
        ).success
        assert len(list(outbox.rglob("*.json"))) == 4
        assert publish.execute_in_process(instance=instance, tags=night).success
        assert len(list(outbox.rglob("*.json"))) == 6
    assert {j.status for j in _jobs(small_settings)} == {"DONE"}


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
