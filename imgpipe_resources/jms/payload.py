"""The 3JMS image event, and the one function that maps 3JMS records to intake rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.orm import Session

from imgpipe_assets.errors import InvalidPayload
from imgpipe_resources.db import intake


class ImageEvent(BaseModel):
    """A 3JMS image event. Extra fields are accepted and kept with the intake record."""

    model_config = ConfigDict(extra="allow")

    event: str = Field(max_length=64, description="image.created, image.deleted, ...")
    sku: str = Field(min_length=1, max_length=255)
    imageUrl: str = Field(max_length=2048, description="http(s) URL of the photo")
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$", description="sha256 of the photo's bytes")

    @field_validator("imageUrl")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        return value


@dataclass(frozen=True)
class IntakeFields:
    event: str
    sku: str
    sha256: str
    image_url: str
    payload: dict[str, Any]


def record_event(
    session: Session,
    fields: IntakeFields,
    *,
    source: str,
    max_images_per_sku: int | None,
    delivery_id: str | None = None,
) -> intake.IntakeOutcome:
    """Record a validated 3JMS event (webhook or poll) in the intake log."""
    return intake.record(
        session,
        event=fields.event,
        sku=fields.sku,
        sha256=fields.sha256,
        source=source,
        image_url=fields.image_url,
        delivery_id=delivery_id,
        payload=fields.payload,
        max_images_per_sku=max_images_per_sku,
    )


def parse_event(data: object) -> IntakeFields:
    """Validate a decoded event; errors name the field."""
    if not isinstance(data, dict):
        raise InvalidPayload("body must be a JSON object")
    where = _nul_at(data)
    if where is not None:
        # PostgreSQL cannot store a NUL; SQLite could, and must answer the same.
        raise InvalidPayload(f"field '{where}' holds a NUL character")
    try:
        event = ImageEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidPayload(f"field '{field}': {first['msg']}") from None
    return IntakeFields(event.event, event.sku, event.sha256.lower(), event.imageUrl, dict(data))


def _nul_at(value: object, path: str = "") -> str | None:
    """The path of the first string (key or value) holding a NUL character, if any."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    items: list[tuple[str, object]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return name.replace("\x00", "\\0")
            items.append((name, item))
    elif isinstance(value, list):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(value)]
    for name, item in items:
        found = _nul_at(item, name)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class FieldMap:
    """Where the fields of a polled 3JMS record live (3JMS's API is the retailer's own)."""

    event: str = "event"
    sku: str = "sku"
    image_url: str = "imageUrl"
    sha256: str = "sha256"
    default_event: str = "image.created"


def record_to_event(record: Mapping[str, Any], fields: FieldMap = FieldMap()) -> IntakeFields:
    """Map one polled 3JMS record to the same fields a webhook delivers."""
    return parse_event(
        {
            **record,
            "event": record.get(fields.event, fields.default_event),
            "sku": record.get(fields.sku),
            "imageUrl": record.get(fields.image_url),
            "sha256": record.get(fields.sha256),
        }
    )
