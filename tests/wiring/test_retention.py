"""Retention: old intermediates go, shared and published things stay, partitions retire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import select, update

from imgpipe_assets.definitions import build_definitions
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from tests.helpers import Chain, ingest


def test_retention_deletes_old_intermediates_and_retires_partitions(
    small_settings: Settings, sample_photos: dict
) -> None:
    store = LocalObjectStore(root=str(small_settings.home))
    old_key, new_key = ingest(
        small_settings, [sample_photos["RING-0001"], sample_photos["WATCH-0002"]]
    )
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        runs = Chain(defs, instance).settle()
        assert runs and all(r.success for r in runs), Chain.failed(runs)
        with session_scope(small_settings.database_url) as session:
            # Publish the review theme too, so every job of the old image is finished...
            session.execute(
                update(Job).where(Job.status == "AWAITING_REVIEW").values(status="DONE")
            )
            # ...and age the old image past the retention window.
            session.execute(
                update(Job)
                .where(Job.partition_key == old_key)
                .values(updated_at=datetime.now(UTC) - timedelta(days=40))
            )
            old = session.scalars(select(Job).where(Job.partition_key == old_key)).all()
        job = defs.resolve_job_def("retention_job")
        for _ in range(2):  # the second run finds nothing more to do
            assert job.execute_in_process(instance=instance).success
        assert instance.get_dynamic_partitions("images") == [new_key]
    assert not store.exists(old[0].original_key) and not store.exists(old[0].mask_key)
    assert all(store.exists(j.composite_key) for j in old)  # published: kept
    assert all(store.exists(j.background_key) for j in old)  # shared procedural: kept
    with session_scope(small_settings.database_url) as session:
        assert len(session.scalars(select(Job).where(Job.partition_key == old_key)).all()) == 3
        new = session.scalars(select(Job).where(Job.partition_key == new_key)).first()
    assert new is not None and store.exists(new.mask_key) and store.exists(new.original_key)


def test_stale_image_query_runs_on_both_databases(database_url: str) -> None:
    from imgpipe_assets.retention import stale_images
    from imgpipe_resources.database import JobsDatabase
    from imgpipe_resources.db.jobs import ImageRef, ensure_jobs
    from imgpipe_resources.db.migrate import upgrade

    upgrade(database_url)
    with session_scope(database_url) as session:
        ensure_jobs(session, ImageRef("A~" + "ab" * 6, "A", "ab" * 32, None, None), ["t"])
    db = JobsDatabase(url=database_url)
    assert stale_images(db, days=0, limit=10) == []  # QUEUED: not finished
    with session_scope(database_url) as session:
        session.execute(update(Job).values(status="DONE"))
    assert stale_images(db, days=-1, limit=10) == ["A~" + "ab" * 6]
