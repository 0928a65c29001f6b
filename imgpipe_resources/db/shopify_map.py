"""The SKU -> Shopify product cache (``shopify_map``), refreshed on a miss or when stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from imgpipe_assets.errors import ImgpipeError
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import ShopifyMap
from imgpipe_resources.publishing import ProductRef, Publisher

STALE_AFTER = timedelta(hours=24)


def product_for(url: str, publisher: Publisher, sku: str) -> ProductRef:
    now = datetime.now(UTC)
    with session_scope(url) as session:
        row = session.get(ShopifyMap, sku)
        synced = row.last_synced_at if row is not None else None
        if synced is not None and synced.tzinfo is None:
            synced = synced.replace(tzinfo=UTC)
        if (
            row is not None
            and row.sync_status == "synced"
            and row.product_id
            and synced is not None
            and now - synced < STALE_AFTER
        ):
            return ProductRef(row.product_id, row.variant_id, row.handle, row.title)
    try:
        product = publisher.find_product(sku)
    except ImgpipeError as exc:
        _save(url, sku, sync_status=exc.code.lower(), last_synced_at=now)
        raise
    _save(
        url,
        sku,
        product_id=product.product_id,
        variant_id=product.variant_id,
        handle=product.handle,
        title=product.title,
        sync_status="synced",
        last_synced_at=now,
    )
    return product


def _save(url: str, sku: str, **fields: Any) -> None:
    """Write the SKU's row; two workers looking the same SKU up at once both write it,
    and the second insert becomes an update."""
    for attempt in (1, 2):
        try:
            with session_scope(url) as session:
                row = session.get(ShopifyMap, sku) or ShopifyMap(sku=sku)
                for name, value in fields.items():
                    setattr(row, name, value)
                session.add(row)
            return
        except IntegrityError:
            if attempt == 2:
                raise
