"""The 3JMS poller against a local server: pagination, a failure mid-page, a restart."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import IntakeRecord
from imgpipe_resources.jms.client import JmsClient
from imgpipe_resources.settings import Settings
from sensors.jms_poll import POSITION_KEY, build_jms_poll_sensor
from tests.servers import Reply, serve


def image(i: int, updated: str) -> dict:
    return {
        "sku": f"SKU-{i}",
        "imageUrl": f"https://cdn.3jms.test/{i}.jpg",
        "sha256": f"{i:064x}",
        "updatedAt": updated,
        "title": f"Item {i}",
    }


class Fake3jms:
    """Pages of three images; page tokens; can fail once on a given page."""

    def __init__(self) -> None:
        self.images = [image(i, f"2026-11-26T10:00:{i:02d}Z") for i in range(1, 8)]
        self.fail_page: str | None = None
        self.calls: list[dict] = []

    def route(self, query: dict, headers: dict) -> Reply:
        since = query.get("since", [""])[0]
        page = int(query.get("page", ["0"])[0])
        self.calls.append({"since": since, "page": page, "auth": headers.get("Authorization")})
        if self.fail_page is not None and str(page) == self.fail_page:
            self.fail_page = None
            return Reply(503, b"maintenance")
        pending = [i for i in self.images if i["updatedAt"] > since]
        chunk = pending[page * 3 : page * 3 + 3]
        more = len(pending) > page * 3 + 3
        body = {"images": chunk, "next": str(page + 1) if more else None}
        return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def tick(settings: Settings, base_url: str) -> str:
    sensor = build_jms_poll_sensor(60, settings.max_images_per_sku)
    resources = {
        "db": JobsDatabase(url=settings.database_url),
        "jms": JmsClient(base_url=base_url, api_token="t0ken", max_attempts=1, backoff_s=0),
    }
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources=resources)
        result = sensor.evaluate_tick(context)
    assert not result.run_requests
    return result.skip_message or ""


def recorded(settings: Settings) -> list[str]:
    with session_scope(settings.database_url) as session:
        return [r.sku for r in session.scalars(select(IntakeRecord).order_by(IntakeRecord.id))]


def position(settings: Settings) -> dict:
    with session_scope(settings.database_url) as session:
        return json.loads(intake.get_meta(session, POSITION_KEY) or "{}")


def test_polls_every_page_and_resumes_after_a_failure_mid_way(small_settings: Settings) -> None:
    fake = Fake3jms()
    fake.fail_page = "1"
    with serve({"/images": fake.route}) as base:
        message = tick(small_settings, base)
        assert "unreachable after 1 pages (3 new)" in message
        assert recorded(small_settings) == ["SKU-1", "SKU-2", "SKU-3"]
        assert position(small_settings) == {
            "since": None,
            "page": "1",
            "newest": "2026-11-26T10:00:03Z",
        }

        # A restart (a new tick, a new process) resumes at the failed page.
        message = tick(small_settings, base)
        assert "2 pages read, 4 new" in message
        assert recorded(small_settings) == [f"SKU-{i}" for i in range(1, 8)]
        assert position(small_settings)["since"] == "2026-11-26T10:00:07Z"
        assert fake.calls[-1]["auth"] == "Bearer t0ken"

        # Nothing new: one call from the stored cursor, nothing recorded.
        fake.images.append(image(8, "2026-11-26T10:00:08Z"))
        assert "1 pages read, 1 new" in tick(small_settings, base)
        assert fake.calls[-1]["since"] == "2026-11-26T10:00:07Z"
        assert "1 pages read, 0 new" in tick(small_settings, base)
    with session_scope(small_settings.database_url) as session:
        rows = session.scalars(select(IntakeRecord)).all()
        assert {r.source for r in rows} == {"poll"} and {r.status for r in rows} == {"ACCEPTED"}


def test_unreachable_3jms_is_a_skipped_tick(small_settings: Settings) -> None:
    message = tick(small_settings, "http://127.0.0.1:9")  # nothing listens on the discard port
    assert "3JMS unreachable" in message
    assert recorded(small_settings) == []


def test_polling_is_off_without_a_base_url(small_settings: Settings) -> None:
    sensor = build_jms_poll_sensor(60, 10)
    resources = {"db": JobsDatabase(url=small_settings.database_url), "jms": JmsClient()}
    with dg.instance_for_test() as instance:
        result = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
    assert "polling is off" in (result.skip_message or "")


def test_invalid_records_are_rejected_with_a_reason(small_settings: Settings) -> None:
    bad = [
        {"sku": "../x", "imageUrl": "https://a.test/1.jpg", "sha256": "ab" * 32},
        {"sku": "OK-1", "imageUrl": "ftp://a.test/1.jpg", "sha256": "cd" * 32},
    ]

    def route(query: dict, headers: dict) -> Reply:
        return Reply(200, json.dumps({"images": bad, "next": None}).encode())

    with serve({"/images": route}) as base:
        tick(small_settings, base)
    with session_scope(small_settings.database_url) as session:
        rows = session.scalars(select(IntakeRecord).order_by(IntakeRecord.id)).all()
    assert [r.status for r in rows] == ["REJECTED", "REJECTED"]
    assert "INVALID_SKU" in (rows[0].reason or "") and "imageUrl" in (rows[1].reason or "")


@pytest.mark.parametrize("status", [429, 500])
def test_client_retries_throttling_and_server_errors(status: int) -> None:
    calls = []

    def route(query: dict, headers: dict) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            return Reply(status, b"", {"Retry-After": "0"})
        return Reply(200, json.dumps({"images": [image(1, "t")], "next": None}).encode())

    with serve({"/images": route}) as base:
        page = JmsClient(base_url=base, backoff_s=0).fetch_page(None, None)
    assert len(calls) == 2 and page.items[0]["sku"] == "SKU-1" and page.newest == "t"
