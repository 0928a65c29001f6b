"""Publishing composites to the shop: a dry-run outbox by default (Shopify sits beside it)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from pydantic import Field

from imgpipe_resources.keys import check_storage_key


@dataclass(frozen=True)
class MediaRequest:
    sku: str
    sha256: str
    theme: str
    filename: str  # deterministic per (sku, sha256, theme): the duplicate guard
    alt: str
    source_url: str | None  # the store's public URL for the composite, if it has one
    storage_key: str
    # The bytes, when the store has no public URL (local storage): the client then
    # uploads them to Shopify first (a staged upload).
    content: bytes | None = None
    content_type: str = "image/jpeg"
    featured: bool = False  # make it the product's first image (once; a re-run moves nothing)


@dataclass(frozen=True)
class ProductRef:
    product_id: str
    variant_id: str | None
    handle: str | None
    title: str | None


@dataclass(frozen=True)
class PublishedMedia:
    product_id: str
    variant_id: str
    media_id: str
    created: bool  # False when the same media was already attached
    dry_run: bool
    record: str  # where the record of it lives (outbox file or admin URL)
    removed: list[str] = field(default_factory=list)  # media detached by the replace strategy
    featured: bool = False  # moved to first place by this call


class Publisher(dg.ConfigurableResource, ABC):
    """Attaches a composite to the product with the matching SKU, exactly once."""

    @abstractmethod
    def find_product(self, sku: str) -> ProductRef: ...

    @abstractmethod
    def publish(self, request: MediaRequest, product: ProductRef) -> PublishedMedia: ...


class ShopifyOutbox(Publisher):
    """Dry run: records exactly what would be published, one JSON file per media.

    The file name is the media's deterministic filename, so publishing twice writes nothing
    new: the same guard the real client uses against duplicate attachments.
    """

    outbox_dir: str = Field(description="Directory of the dry-run outbox")

    def find_product(self, sku: str) -> ProductRef:
        return ProductRef(
            f"gid://shopify/Product/dry-run-{sku}",
            f"gid://shopify/ProductVariant/dry-run-{sku}",
            None,
            None,
        )

    def publish(self, request: MediaRequest, product: ProductRef) -> PublishedMedia:
        key = check_storage_key(f"{request.sku}/{request.filename}.json")
        path = Path(self.outbox_dir) / key
        product_id, variant_id = product.product_id, product.variant_id or ""
        media_id = f"gid://shopify/MediaImage/dry-run-{request.filename}"
        if path.is_file():
            return PublishedMedia(product_id, variant_id, media_id, False, True, str(path))
        entry = {
            "dry_run": True,
            "recorded_at": datetime.now(UTC).isoformat(),
            "product_lookup": {
                "query": f"sku:{request.sku}",
                "product_id": product_id,
                "variant_id": variant_id,
            },
            "media": {
                "id": media_id,
                "filename": request.filename,
                "alt": request.alt,
                "originalSource": request.source_url or f"staged upload of {request.storage_key}",
                "mediaContentType": "IMAGE",
                "featured": request.featured,
            },
            "request": {k: v for k, v in asdict(request).items() if k != "content"},
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry, indent=2))
        tmp.replace(path)
        return PublishedMedia(product_id, variant_id, media_id, True, True, str(path))
