"""Recording local photos in the intake table, exactly as the webhook receiver records 3JMS's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from imgpipe_assets.errors import ImgpipeError
from imgpipe_assets.imaging.decode import FORMATS, sniff
from imgpipe_resources.db import intake
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.keys import original_key, validate_sku
from imgpipe_resources.settings import Settings

if TYPE_CHECKING:
    from imgpipe_resources.files import LocalFiles
    from imgpipe_resources.storage import ObjectStore

IMAGE_SUFFIXES = {"." + ext for ext in FORMATS.values()} | {".jpeg", ".tiff"}


@dataclass(frozen=True)
class IngestResult:
    path: Path
    sku: str
    status: str  # ACCEPTED, DUPLICATE, REJECTED, IGNORED or ERROR
    partition_key: str | None
    reason: str | None


def expand(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders as their image files, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


def ingest_file(
    settings: Settings,
    storage: ObjectStore | LocalFiles,
    path: Path,
    sku: str | None = None,
    title: str | None = None,
) -> IngestResult:
    """Store the photo's bytes content-addressed and record it for the intake sensor.

    The SKU is ``sku`` or, if not given, the file's stem. Nothing is processed here.
    """
    sku = sku or path.stem
    if not path.is_file():
        # A FIFO, a device or a socket would be read for ever, or never end.
        return IngestResult(path, sku, "ERROR", None, f"{path} is not a regular file")
    try:
        validate_sku(sku)
        data = path.read_bytes()
        info = sniff(data)
        sha = hashlib.sha256(data).hexdigest()
        key = original_key(sku, sha, info.ext)
        storage.put(key, data, f"image/{info.format.lower()}")
    except ImgpipeError as exc:
        return IngestResult(path, sku, "ERROR", None, str(exc))
    except OSError as exc:
        return IngestResult(path, sku, "ERROR", None, f"cannot read {path}: {exc.strerror}")
    with session_scope(settings.database_url) as session:
        outcome = intake.record(
            session,
            event=intake.IMAGE_CREATED,
            sku=sku,
            sha256=sha,
            source="cli",
            image_url=path.absolute().as_uri(),
            original_key=key,
            payload={"title": title} if title else None,
            max_images_per_sku=settings.max_images_per_sku,
        )
    status = outcome.status if outcome.created else "DUPLICATE"
    return IngestResult(path, sku, status, outcome.partition_key, outcome.reason)
