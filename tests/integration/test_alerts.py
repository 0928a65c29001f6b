"""The failure sensor: jobs of a failed run end FAILED, and Slack hears of it over HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_resources.alerts import SlackAlerts
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from sensors.failures import failure_sensor
from tests.helpers import ingest, run_range


@pytest.fixture
def slack() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T0/B0/x", received
    server.shutdown()
    server.server_close()


def test_a_failed_batch_names_only_its_failed_photo_and_slack_hears_once(
    small_settings: Settings, sample_photos: dict, tmp_path: Path, slack: tuple
) -> None:
    """One truncated photo in a mask run of three: the run fails, its good photos wait for
    their composites untouched, the bad one is posted to Slack once, however often the
    failure is reported."""
    url, received = slack
    broken = tmp_path / "BROKEN-9.jpg"
    data = sample_photos["RING-0001"].read_bytes()
    broken.write_bytes(data[: len(data) // 3])
    keys = ingest(small_settings, [sample_photos["WATCH-0002"], broken, sample_photos["RING-0001"]])
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        result = run_range(defs, instance, "mask_job", keys[0], keys[-1])
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        context = dg.build_run_status_sensor_context(
            sensor_name="failure_sensor",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure,
            resources={
                "db": JobsDatabase(url=small_settings.database_url),
                "alerts": SlackAlerts(webhook_url=url, webserver_url="http://dagit.test"),
            },
        ).for_run_failure()
        failure_sensor(context)
        failure_sensor(context)  # reported twice (a daemon restart): posted once
    (message,) = received
    text = message["text"]
    assert "mask_job failed" in text and f"http://dagit.test/runs/{result.run_id}" in text
    assert "BROKEN-9 / white / mask: TRUNCATED_IMAGE" in text
    assert "WATCH-0002" not in text and "RING-0001" not in text
    with session_scope(small_settings.database_url) as session:
        by_sku: dict[str, set[str]] = {}
        for job in session.scalars(select(Job)):
            by_sku.setdefault(job.sku, set()).add(job.status)
    assert by_sku == {
        "BROKEN-9": {"FAILED"},
        "WATCH-0002": {"SEGMENTING"},
        "RING-0001": {"SEGMENTING"},
    }


def test_slack_is_silent_without_a_webhook() -> None:
    assert SlackAlerts().post("hello") is False


def test_jobs_left_mid_stage_by_a_crashed_run_are_marked_failed(small_settings: Settings) -> None:
    from imgpipe_resources.db.jobs import ImageRef, ensure_jobs
    from sensors.failures import failure_report

    with session_scope(small_settings.database_url) as session:
        done, stuck = ensure_jobs(
            session, ImageRef("A~" + "ab" * 6, "A", "ab" * 32, None, None), ["white", "marble"]
        )
        done.status, stuck.status = "DONE", "COMPOSITING"
        done.dagster_run_id = stuck.dagster_run_id = "run-1"
    failed = failure_report(
        JobsDatabase(url=small_settings.database_url), "run-1", "render_job", "process killed"
    )
    assert [(j.theme, j.code) for j in failed] == [("marble", "RUN_FAILED")]
    with session_scope(small_settings.database_url) as session:
        rows = {j.theme: j.status for j in session.scalars(select(Job))}
    assert rows == {"white": "DONE", "marble": "FAILED"}
