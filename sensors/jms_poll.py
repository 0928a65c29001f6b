"""The 3JMS poller: new images from 3JMS's API into the intake table.

The position (``since`` plus the page in progress) lives in the ``metadata`` table and moves
in the same transaction as the page's intake rows, so a restart resumes where it stopped and
a page is never half-recorded. An unreachable 3JMS is a skipped tick with a reason.
"""

import json

import dagster as dg

from imgpipe_assets.errors import ImgpipeError
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db import intake
from imgpipe_resources.jms.client import JmsClient
from imgpipe_resources.jms.payload import FieldMap, record_event, record_to_event

POSITION_KEY = "jms.poll.position"
MAX_PAGES_PER_TICK = 20


def record_page(
    db: JobsDatabase, items: list[dict], position: dict, max_per_sku: int, fields: FieldMap
) -> int:
    """Record a page's images and the new position together; returns how many were new."""
    created = 0
    with db.session() as session:
        for item in items:
            try:
                outcome = record_event(
                    session,
                    record_to_event(item, fields),
                    source="poll",
                    max_images_per_sku=max_per_sku,
                )
            except ImgpipeError as exc:
                outcome = intake.record(
                    session,
                    event="invalid",
                    sku=str(item.get(fields.sku) or "?")[:255],
                    sha256=str(item.get(fields.sha256) or "")[:64],
                    source="poll",
                    payload=item,
                )
                if outcome.created:
                    intake.reject(session, outcome.record_id, str(exc))
            created += outcome.created
        intake.set_meta(session, POSITION_KEY, json.dumps(position))
    return created


def build_jms_poll_sensor(interval_s: int, max_images_per_sku: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="jms_poll_sensor",
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Polls 3JMS for new images (when JMS_BASE_URL is set) into the intake "
        "table; the intake sensor does the rest.",
    )
    def jms_poll_sensor(
        context: dg.SensorEvaluationContext, db: JobsDatabase, jms: JmsClient
    ) -> dg.SkipReason:
        if not jms.enabled:
            return dg.SkipReason("polling is off: JMS_BASE_URL is not set")
        with db.session() as session:
            position = json.loads(intake.get_meta(session, POSITION_KEY) or "{}")
        since, page, newest = position.get("since"), position.get("page"), position.get("newest")
        created = pages = 0
        try:
            while pages < MAX_PAGES_PER_TICK:
                result = jms.fetch_page(since, page)
                pages += 1
                if result.newest and (newest is None or result.newest > newest):
                    newest = result.newest
                if result.next_page:
                    page = result.next_page
                    state = {"since": since, "page": page, "newest": newest}
                else:
                    since, page = newest or since, None
                    state = {"since": since, "page": None, "newest": newest}
                created += record_page(db, result.items, state, max_images_per_sku, jms.fields)
                if page is None:
                    break
        except ImgpipeError as exc:
            return dg.SkipReason(f"3JMS unreachable after {pages} pages ({created} new): {exc}")
        return dg.SkipReason(f"{pages} pages read, {created} new images recorded")

    return jms_poll_sensor
