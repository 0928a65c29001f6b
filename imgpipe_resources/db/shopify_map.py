"""The SKU -> Shopify product cache (``shopify_map``), refreshed on a miss or when stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
        with session_scope(url) as session:
            row = session.get(ShopifyMap, sku) or ShopifyMap(sku=sku)
            row.sync_status, row.last_synced_at = exc.code.lower(), now
            session.add(row)
        raise
    with session_scope(url) as session:
        row = session.get(ShopifyMap, sku) or ShopifyMap(sku=sku)
        row.product_id, row.variant_id = product.product_id, product.variant_id
        row.handle, row.title = product.handle, product.title
        row.sync_status, row.last_synced_at = "synced", now
        session.add(row)
    return product
