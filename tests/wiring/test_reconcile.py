"""Nothing stranded: a job that waits with no run for it is asked for again, a bounded
number of times, then named STRANDED."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import select, update

from imgpipe_assets.definitions import build_definitions
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from tests.helpers import Chain, ingest


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance):  # type: ignore[no-untyped-def]
    sensor = defs.resolve_sensor_def("reconcile_sensor")
    context = dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        definitions=defs,
        resources=defs.resources,
    )
    return sensor.evaluate_tick(context)


def _age(settings: Settings, minutes: int = 60) -> None:
    with session_scope(settings.database_url) as session:
        session.execute(
            update(Job).values(updated_at=datetime.now(UTC) - timedelta(minutes=minutes))
        )


def _jobs(settings: Settings) -> list[Job]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(Job)))


def test_a_stranded_photo_is_cut_out_again_then_rendered(
    small_settings: Settings, sample_photos: dict
) -> None:
    """A photo whose mask run never came (a lost run request), then whose renders never
    came (a daemon stopped between runs): each tick asks for what it needs next."""
    (key,) = ingest(small_settings, [sample_photos["RING-0001"]])
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        assert not Chain(defs, instance).tick("intake_sensor")  # jobs rows, QUEUED; no run
        # Not yet: the job has not waited long enough.
        assert not _tick(defs, instance).run_requests
        _age(small_settings)
        (request,) = _tick(defs, instance).run_requests
        assert request.job_name == "mask_job" and request.partition_key == key
        assert {j.reconciled for j in _jobs(small_settings)} == {1}
        # Asked for: not again until it has waited once more.
        assert not _tick(defs, instance).run_requests
        defs.resolve_job_def("mask_job").execute_in_process(instance=instance, partition_key=key)
        _age(small_settings)
        (render,) = _tick(defs, instance).run_requests
        assert render.job_name == "render_job"
        assert render.tags["dagster/asset_partition_range_start"].startswith(key)


def test_a_job_asked_for_too_often_is_stranded_with_a_named_error(
    small_settings: Settings, sample_photos: dict
) -> None:
    (key,) = ingest(small_settings, [sample_photos["WATCH-0002"]])
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        assert not Chain(defs, instance).tick("intake_sensor")  # jobs rows, QUEUED; no run
        for attempt in range(1, small_settings.reconcile_attempts + 1):
            _age(small_settings)
            (request,) = _tick(defs, instance).run_requests
            assert request.run_key == f"reconcile:mask_job:{key}:{attempt}"
        _age(small_settings)
        assert not _tick(defs, instance).run_requests
    jobs = _jobs(small_settings)
    assert {(j.status, j.error_code) for j in jobs} == {("FAILED", "STRANDED")}


def test_a_photo_with_a_live_run_is_left_to_it(
    small_settings: Settings, sample_photos: dict
) -> None:
    (key,) = ingest(small_settings, [sample_photos["PENDANT-0003"]])
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        assert not Chain(defs, instance).tick("intake_sensor")  # jobs rows, QUEUED; no run
        _age(small_settings)
        # A mask run for the photo exists and has not started yet (queued behind others).
        run = instance.create_run_for_job(
            defs.resolve_job_def("mask_job"), tags={"dagster/partition": key}
        )
        assert run.status == dg.DagsterRunStatus.NOT_STARTED
        assert not _tick(defs, instance).run_requests
