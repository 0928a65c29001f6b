"""The publish stage: an image x theme partition's composite attached to its Shopify
product, exactly once."""

from __future__ import annotations

from dataclasses import dataclass

from imgpipe_assets.errors import SourceMissing
from imgpipe_assets.imaging.encode import CONTENT_TYPES
from imgpipe_assets.partitions import split_multi_key
from imgpipe_assets.stages.outcome import Outcome
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.db.models import JobStatus
from imgpipe_resources.db.shopify_map import product_for
from imgpipe_resources.publishing import MediaRequest, Publisher
from imgpipe_resources.storage import ObjectStore
from imgpipe_resources.themes import ThemeLibrary


@dataclass(frozen=True)
class PublishStage:
    """Attach the composite under a deterministic file name (a re-run finds it instead of
    making a second) and finish the job.

    ``automatic`` is the chain publishing what it has just rendered (or the reconciliation
    finishing that): a composite waiting in AWAITING_REVIEW is left for a person and the
    stage answers None (nothing to record). Otherwise this is a person's approval and what
    was asked is published."""

    db: JobsDatabase
    storage: ObjectStore
    themes: ThemeLibrary
    publisher: Publisher
    run_id: str
    automatic: bool

    def __call__(self, key: str) -> Outcome | None:
        image, theme_name = split_multi_key(key)
        if self.automatic and self.db.held(image, theme_name):
            return None
        theme = self.themes.get(theme_name)
        ref, payload = self.db.image(image)
        (job,) = self.db.enter(ref, [theme_name], JobStatus.UPLOADING, self.run_id)
        if job.composite_key is None or not self.storage.exists(job.composite_key):
            raise SourceMissing(f"{key} has no stored composite")
        product = product_for(self.db.url, self.publisher, ref.sku)
        # The shop's own product title names the product best; 3JMS's is the fallback.
        title = str(product.title or payload.get("title") or ref.sku)
        ext = job.composite_key.rsplit(".", 1)[-1]
        public = self.storage.public_url(job.composite_key)
        request = MediaRequest(
            sku=ref.sku,
            sha256=ref.sha256,
            theme=theme.name,
            filename=f"imgpipe-{ref.sku}-{ref.sha256[:12]}-{theme.name}.{ext}",
            alt=theme.alt.format(title=title, sku=ref.sku),
            source_url=public,
            storage_key=job.composite_key,
            # Without a public URL (local storage) the client uploads the bytes itself.
            content=None if public else self.storage.get(job.composite_key),
            content_type=CONTENT_TYPES[theme.output_format],
            featured=theme.featured,
        )
        media = self.publisher.publish(request, product)
        self.db.record(
            image,
            theme.name,
            shopify_product_id=media.product_id,
            shopify_variant_id=media.variant_id,
            shopify_media_id=media.media_id,
        )
        return Outcome(
            status="created" if media.created else "already attached",
            storage_key=job.composite_key,
            facts={
                "sku": ref.sku,
                "theme": theme.name,
                "product_id": media.product_id,
                "media_id": media.media_id,
                "filename": request.filename,
                "alt": request.alt,
                "dry_run": media.dry_run,
                "record": media.record,
                "replaced": media.removed,
                "featured": "made the product's first image"
                if media.featured
                else ("the product's first image" if theme.featured else "no"),
            },
        )
