"""Migrations, constraints and the intake log, on SQLite and on PostgreSQL."""

from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from imgpipe_assets.errors import SchemaOutOfDate
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import (
    check_schema,
    current_revision,
    get_engine,
    head_revision,
    session_scope,
)
from imgpipe_resources.db.jobs import ImageRef, ensure_jobs, summary
from imgpipe_resources.db.migrate import downgrade, script_head, upgrade
from imgpipe_resources.db.models import IntakeRecord, Job

SHA = "ab" * 32
SHA2 = "cd" * 32


def test_migrations_create_the_seed_tables(database_url: str) -> None:
    assert current_revision(database_url) is None
    assert upgrade(database_url) == head_revision()
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {"jobs", "shopify_map", "metadata", "intake"} <= tables
    indexes = {i["name"] for i in inspect(get_engine(database_url)).get_indexes("jobs")}
    assert {"ix_jobs_status_updated_at", "ix_jobs_sku_sha", "ix_jobs_created_at"} <= indexes
    # Idempotent, and reversible.
    assert upgrade(database_url) == head_revision()
    downgrade(database_url, "base")
    assert "jobs" not in inspect(get_engine(database_url)).get_table_names()
    upgrade(database_url)
    check_schema(database_url)


def test_the_schema_check_names_the_newest_migration() -> None:
    # The check reads migrations.HEAD instead of loading Alembic: a new migration moves it.
    assert head_revision() == script_head()


def test_old_schema_is_refused_with_the_upgrade_command(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="imgpipe db upgrade"):
        check_schema(database_url)


def _job(status: str = "QUEUED") -> Job:
    return Job(
        sku="A",
        img_sha256=SHA,
        theme="t",
        partition_key="A~x",
        status=status,
        cost_usd=Decimal(0),
        attempts=0,
    )


def test_jobs_are_unique_per_sku_image_theme(database_url: str) -> None:
    upgrade(database_url)
    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        for _ in range(2):
            session.add(_job())
            session.flush()


def test_status_outside_the_state_machine_is_refused_by_the_database(database_url: str) -> None:
    upgrade(database_url)
    with pytest.raises(IntegrityError), session_scope(database_url) as session:
        session.add(_job("BOGUS"))
        session.flush()


def test_ensure_jobs_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    ref = ImageRef("A~abababababab", "A", SHA, None, "originals/A/x.jpg")
    for _ in range(3):
        with session_scope(database_url) as session:
            ensure_jobs(session, ref, ["t1", "t2", "t3"])
    with session_scope(database_url) as session:
        rows = session.scalars(select(Job)).all()
        assert sorted(j.theme for j in rows) == ["t1", "t2", "t3"]
        assert {j.status for j in rows} == {"QUEUED"}
        assert summary(session)["by_status"] == {"QUEUED": 3}


def test_intake_deduplicates_by_delivery_and_by_image(database_url: str) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        first = intake.record(
            session, event="image.created", sku="A", sha256=SHA, source="webhook", delivery_id="d1"
        )
        again = intake.record(
            session, event="image.created", sku="A", sha256=SHA2, source="webhook", delivery_id="d1"
        )
        same_image = intake.record(
            session, event="image.created", sku="A", sha256=SHA, source="webhook", delivery_id="d2"
        )
        other_sku = intake.record(
            session, event="image.created", sku="B", sha256=SHA, source="webhook", delivery_id="d3"
        )
    assert first.created and first.status == "ACCEPTED"
    assert (again.created, again.record_id) == (False, first.record_id)
    assert (same_image.created, same_image.record_id) == (False, first.record_id)
    assert other_sku.created and other_sku.partition_key != first.partition_key
    with session_scope(database_url) as session:
        assert session.scalar(select(IntakeRecord.id).where(IntakeRecord.sku == "A")) is not None
        assert len(session.scalars(select(IntakeRecord)).all()) == 2


def test_intake_rejects_unsafe_skus_and_ignores_other_events(database_url: str) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        bad = intake.record(
            session, event="image.created", sku="../../etc", sha256=SHA, source="webhook"
        )
        deleted = intake.record(
            session, event="image.deleted", sku="A", sha256=SHA, source="webhook"
        )
        assert intake.accepted_after(session, 0, 10) == []
    assert bad.status == "REJECTED" and "INVALID_SKU" in (bad.reason or "")
    assert bad.partition_key is None
    assert deleted.status == "IGNORED"


def test_intake_enforces_max_images_per_sku(database_url: str) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        outcomes = [
            intake.record(
                session,
                event="image.created",
                sku="A",
                sha256=f"{i:064x}",
                source="cli",
                max_images_per_sku=2,
            )
            for i in range(3)
        ]
    assert [o.status for o in outcomes] == ["ACCEPTED", "ACCEPTED", "REJECTED"]
    assert "MAX_IMAGES_PER_SKU" in (outcomes[2].reason or "")


def test_metadata_cursor_round_trips(database_url: str) -> None:
    upgrade(database_url)
    with session_scope(database_url) as session:
        intake.set_meta(session, "jms.poll_cursor", "2026-11-26T00:00:00Z")
    with session_scope(database_url) as session:
        intake.set_meta(session, "jms.poll_cursor", "2026-11-27T00:00:00Z")
    with session_scope(database_url) as session:
        assert intake.get_meta(session, "jms.poll_cursor") == "2026-11-27T00:00:00Z"


def test_photos_sharing_a_sha_prefix_get_distinct_keys(database_url: str) -> None:
    upgrade(database_url)
    a, b = "0" * 63 + "1", "0" * 63 + "2"
    with session_scope(database_url) as session:
        first = intake.record(session, event="image.created", sku="A", sha256=a, source="cli")
        second = intake.record(session, event="image.created", sku="A", sha256=b, source="cli")
    assert first.partition_key == "A~" + "0" * 12
    assert second.partition_key and second.partition_key != first.partition_key
    assert second.partition_key.startswith("A~000000000000")
