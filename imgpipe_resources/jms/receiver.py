"""The webhook receiver: verify, validate, record once, answer fast.

It downloads nothing and calls no Dagster API: one insert into the intake table, which the
intake sensor reads. Served by `imgpipe webhook serve`.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from imgpipe_assets.errors import ImgpipeError
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import check_schema, session_scope
from imgpipe_resources.jms.payload import (
    ImageEvent,
    IntakeFields,
    InvalidPayload,
    parse_event,
    record_event,
)
from imgpipe_resources.jms.signing import DELIVERY, SIGNATURE, TIMESTAMP, verify
from imgpipe_resources.settings import Settings

PATH = "/webhooks/3jms/images"


class MalformedJson(ValueError):
    pass


# JSON is nested this deep at most; 3JMS's events are flat.
MAX_DEPTH = 32
# Digits of an integer at most: a sha256 is a string, no field needs more.
MAX_DIGITS = 40


def _refuse_constant(name: str) -> object:
    raise MalformedJson(f"{name} is not JSON")


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:
        raise MalformedJson(f"an integer of {len(digits)} digits")
    return int(digits)


def _depth(text: str) -> int:
    """How deeply the JSON text nests, counting brackets outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def decode_json(body: bytes) -> object:
    """The body as strict JSON: no NaN or Infinity (not JSON, and not storable as JSON on
    PostgreSQL), no integer longer than ``MAX_DIGITS``, nesting at most ``MAX_DEPTH``.
    Anything else is ``MalformedJson``, never a server error."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"body is not UTF-8: {exc}") from None
    if _depth(text) > MAX_DEPTH:
        raise MalformedJson(f"JSON nested more than {MAX_DEPTH} deep")
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_int=_bounded_int)
    except (ValueError, RecursionError) as exc:  # MalformedJson is a ValueError too
        raise MalformedJson(f"body is not valid JSON: {exc}") from None
    return data


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(settings: Settings) -> FastAPI:
    """The ASGI app. Refuses to start on an old database schema."""
    check_schema(settings.database_url)
    jms = settings.jms
    app = FastAPI(
        title="imgpipe 3JMS webhook receiver",
        version="1",
        description="Records signed 3JMS image events for the intake sensor.",
    )

    def record(fields: IntakeFields, delivery_id: str) -> intake.IntakeOutcome:
        with session_scope(settings.database_url) as session:
            return record_event(
                session,
                fields,
                source="webhook",
                delivery_id=delivery_id,
                max_images_per_sku=settings.max_images_per_sku,
            )

    @app.post(
        PATH,
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ImageEvent.model_json_schema()}},
            }
        },
        responses={
            200: {"description": "Already recorded (replayed delivery or same image)"},
            401: {"description": "Missing, stale or wrong signature"},
            400: {"description": "Body is not strict JSON (MALFORMED_JSON)"},
            413: {"description": "Body larger than JMS_WEBHOOK_MAX_BODY"},
            422: {"description": "A field is missing or invalid, or the image was refused"},
        },
    )
    async def image_event(
        request: Request,
        x_3jms_timestamp: str | None = Header(None, alias=TIMESTAMP),
        x_3jms_delivery: str | None = Header(None, alias=DELIVERY),
        x_3jms_signature: str | None = Header(None, alias=SIGNATURE),
    ) -> JSONResponse:
        """Record one signed image event from 3JMS."""
        body = await _read_capped(request, jms.max_body_bytes)
        if body is None:
            return _error(413, "BODY_TOO_LARGE", f"body exceeds {jms.max_body_bytes} bytes")
        headers = {
            TIMESTAMP: x_3jms_timestamp,
            DELIVERY: x_3jms_delivery,
            SIGNATURE: x_3jms_signature,
        }
        try:
            delivery_id = verify(
                headers, body, jms.webhook_secrets, tolerance_s=jms.timestamp_tolerance_s
            )
        except ImgpipeError as exc:
            return _error(401, exc.code, exc.message)
        try:
            data = decode_json(body)
        except MalformedJson as exc:
            return _error(400, "MALFORMED_JSON", str(exc))
        try:
            fields = parse_event(data)
        except InvalidPayload as exc:
            return _error(422, exc.code, exc.message)
        outcome = await run_in_threadpool(record, fields, delivery_id)
        result = {"intake_id": outcome.record_id, "partition_key": outcome.partition_key}
        if outcome.status == "REJECTED":
            # Refused again however often it is sent, with the reason it was refused for.
            code, _, reason = (outcome.reason or "").partition(": ")
            if not (code.isupper() and code.replace("_", "").isalpha()):
                code, reason = "REJECTED", outcome.reason or "refused"
            return _error(422, code, reason)
        if not outcome.created:
            return JSONResponse({"status": "duplicate", **result}, status_code=200)
        status = "ignored" if outcome.status == "IGNORED" else "accepted"
        return JSONResponse({"status": status, **result, "reason": outcome.reason}, status_code=202)

    @app.get("/healthz")
    def health() -> JSONResponse:
        """Liveness and database reachability."""
        try:
            with session_scope(settings.database_url) as session:
                session.execute(text("select 1"))
        except Exception as exc:  # the reason is for operators; never a secret
            return JSONResponse({"status": "error", "database": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    return app
