"""Publishing to Shopify: documents valid against the real Admin schema, and the real client
against a local server that plays Shopify (validating every document it receives)."""

from __future__ import annotations

import dataclasses
import gzip
import json

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job, ShopifyMap
from imgpipe_resources.fakes.shopify_server import FakeShopify, ShopFaults
from imgpipe_resources.publishing import MediaRequest
from imgpipe_resources.settings import Settings
from imgpipe_resources.shopify import documents
from imgpipe_resources.shopify.client import (
    MediaFailed,
    ShopifyAdmin,
    SkuAmbiguous,
    SkuNotFound,
)
from tests.helpers import SHARED, Chain, ingest, reread, run_range

SCHEMA = SHARED / "schemas" / "shopify-admin-schema-2025-01.json.gz"


@pytest.fixture(scope="module")
def schema():  # type: ignore[no-untyped-def]
    if not SCHEMA.is_file():
        pytest.skip(f"the Shopify Admin schema is not at {SCHEMA}")
    from graphql import build_client_schema

    with gzip.open(SCHEMA) as fh:
        return build_client_schema(json.load(fh)["data"])


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_every_document_validates_against_the_admin_schema(schema, name: str) -> None:  # type: ignore[no-untyped-def]
    from graphql import parse, validate

    assert [e.message for e in validate(schema, parse(documents.ALL[name]))] == []


def test_no_deprecated_media_mutation_is_used() -> None:
    assert not any("productCreateMedia" in d for d in documents.ALL.values())


def admin(fake: FakeShopify, **kw: object) -> ShopifyAdmin:
    params: dict = {
        "store_domain": "shop.test",
        "admin_token": "shpat_test",
        "admin_url": fake.url,
        "backoff_s": 0.01,
        "ready_poll_s": 0.01,
        "max_attempts": 12,
    }
    params.update(kw)
    return ShopifyAdmin(**params)


def media(sku: str, sha: str, theme: str = "white") -> MediaRequest:
    name = f"imgpipe-{sku}-{sha[:12]}-{theme}.jpg"
    return MediaRequest(
        sku=sku,
        sha256=sha,
        theme=theme,
        filename=name,
        alt=f"{sku} on white",
        source_url=f"https://bucket.test/{name}",
        storage_key=f"c/{name}",
    )


def test_product_lookup_names_missing_and_ambiguous_skus() -> None:
    with FakeShopify(SCHEMA) as fake:
        pid = fake.add_product("Steel watch", ["W-1"])
        fake.add_product("Dup A", ["DUP"])
        fake.add_product("Dup B", ["DUP"])
        client = admin(fake)
        assert client.find_product("W-1").product_id == pid
        with pytest.raises(SkuNotFound):
            client.find_product("NOPE")
        with pytest.raises(SkuAmbiguous, match="2 products"):
            client.find_product("DUP")
    assert fake.stats.invalid_documents == []


def test_attach_once_even_when_asked_again() -> None:
    with FakeShopify(SCHEMA) as fake:
        pid = fake.add_product("Ring", ["R-1"])
        client = admin(fake)
        product = client.find_product("R-1")
        first = client.publish(media("R-1", "ab" * 32), product)
        again = client.publish(media("R-1", "ab" * 32), product)
        assert first.created and not again.created and first.media_id == again.media_id
        assert fake.stats.attachments[(pid, "imgpipe-R-1-abababababab-white.jpg")] == 1
        assert fake.attached(pid) == ["retailer-photo-0.jpg", "imgpipe-R-1-abababababab-white.jpg"]


def test_a_file_still_processing_is_recognised_and_a_rerun_finishes_it() -> None:
    """The first attempt gives up while Shopify still processes the file; the re-run finds
    that file (no image URL yet, a source URL that is not imgpipe's name), waits for it and
    attaches it: no second fileCreate, no FAILED job for a file that is there."""
    with FakeShopify(SCHEMA, ShopFaults(polls_until_ready=6)) as fake:
        pid = fake.add_product("Ring", ["R-1"])
        impatient = admin(fake, ready_timeout_s=0.0)
        product = impatient.find_product("R-1")
        presigned = "https://bucket.test/composites/R-1/cd/white.jpg?X-Amz-Signature=0f"
        request = dataclasses.replace(media("R-1", "cd" * 32), source_url=presigned)
        with pytest.raises(MediaFailed, match="not READY"):
            impatient.publish(request, product)
        (made,) = [f for f in fake.files.values() if f.filename == request.filename]
        assert made.status != "READY"
        done = admin(fake).publish(request, product)
        assert done.created and len(fake.files) == 2  # the shop's own photo, and ours
        assert fake.stats.attachments[(pid, request.filename)] == 1
        again = admin(fake).publish(request, product)  # a re-run of published work
        assert not again.created and again.media_id == done.media_id
    assert fake.stats.invalid_documents == []


def test_failed_media_is_a_named_error() -> None:
    with FakeShopify(SCHEMA, ShopFaults(failed_media=1.0)) as fake:
        fake.add_product("Ring", ["R-1"])
        client = admin(fake)
        with pytest.raises(MediaFailed, match="IMAGE_DOWNLOAD_FAILURE"):
            client.publish(media("R-1", "ab" * 32), client.find_product("R-1"))


def test_replace_detaches_only_our_previous_composite_of_the_theme() -> None:
    with FakeShopify(SCHEMA) as fake:
        pid = fake.add_product("Ring", ["R-1"], own_media=2)
        client = admin(fake, attach_strategy="replace")
        product = client.find_product("R-1")
        client.publish(media("R-1", "11" * 32, "white"), product)
        client.publish(media("R-1", "11" * 32, "marble"), product)
        newer = client.publish(media("R-1", "22" * 32, "white"), product)
        assert len(newer.removed) == 1
        assert fake.attached(pid) == [
            "retailer-photo-0.jpg",
            "retailer-photo-1.jpg",
            "imgpipe-R-1-111111111111-marble.jpg",
            "imgpipe-R-1-222222222222-white.jpg",
        ]


def publishing_to(
    fake: FakeShopify, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """``settings`` publishing to the Shopify stand-in."""
    return reread(
        settings,
        monkeypatch,
        IMGPIPE_PUBLISHER="shopify",
        SHOPIFY_STORE_DOMAIN="shop.test",
        SHOPIFY_ADMIN_TOKEN="shpat_test",
        SHOPIFY_ADMIN_URL=fake.url,
    )


def test_chain_publishes_every_composite_once_under_faults(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = ShopFaults(
        throttled=0.1, too_many=0.05, server_error=0.05, polls_until_ready=2, seed=5
    )
    with FakeShopify(SCHEMA, faults) as fake:
        products = {sku: fake.add_product(sku.title(), [sku]) for sku in sample_photos}
        shop = publishing_to(fake, small_settings, monkeypatch)
        original = ShopifyAdmin.__init__

        def quick(self: ShopifyAdmin, **data: object) -> None:
            data.update(backoff_s=0.01, ready_poll_s=0.01, max_attempts=12)
            original(self, **data)

        monkeypatch.setattr(ShopifyAdmin, "__init__", quick)
        keys = ingest(small_settings, list(sample_photos.values()))
        defs = build_definitions(shop)
        with dg.instance_for_test() as instance:
            chain = Chain(defs, instance)
            runs = chain.settle()
            # The second pass re-runs every partition: a person's re-run of the cut-outs.
            runs += [run_range(defs, instance, "mask_job", keys[0], keys[-1]), *chain.settle()]
            assert len(runs) == 4 and all(r.success for r in runs), Chain.failed(runs)
        assert fake.stats.throttled and fake.stats.invalid_documents == []
        assert fake.stats.staged_bytes > 0  # local storage: composites went as staged uploads
        # Two auto-publishing themes per product, each attached exactly once.
        for pid in products.values():
            ours = [n for n in fake.attached(pid) if n.startswith("imgpipe-")]
            assert sorted(n.rsplit("-", 1)[1] for n in ours) == ["marble.webp", "white.jpg"]
        assert set(fake.stats.attachments.values()) == {1}
    with session_scope(small_settings.database_url) as session:
        done = session.scalars(select(Job).where(Job.status == "DONE")).all()
        assert len(done) == 2 * len(keys) and all(j.shopify_media_id for j in done)
        assert {m.sync_status for m in session.scalars(select(ShopifyMap))} == {"synced"}


def test_a_sku_the_shop_lacks_fails_before_anything_is_paid_for(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing to a shop without the SKU: the image fails at its cut-out with
    SKU_NOT_FOUND before the photo is cut out (nothing stored, nothing spent); the photo of
    a SKU the shop has goes on, and its product is cached for its composites."""
    with FakeShopify(SCHEMA) as fake:
        fake.add_product("Ring", ["RING-0001"])
        shop = publishing_to(fake, small_settings, monkeypatch)
        keys = ingest(small_settings, [sample_photos["RING-0001"], sample_photos["WATCH-0002"]])
        defs = build_definitions(shop)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", keys)
            assert not run_range(defs, instance, "mask_job", keys[0], keys[-1]).success
            assert instance.get_materialized_partitions(dg.AssetKey("mask")) == {keys[0]}
    with session_scope(small_settings.database_url) as session:
        jobs = list(session.scalars(select(Job)))
        cached = {m.sku: m.sync_status for m in session.scalars(select(ShopifyMap))}
    watch = [j for j in jobs if j.sku == "WATCH-0002"]
    assert {(j.status, j.error_code) for j in watch} == {("FAILED", "SKU_NOT_FOUND")}
    assert all(j.mask_key is None and j.cost_usd == 0 for j in watch)
    masks = list((small_settings.home / "masks").glob("*.png"))
    assert len(masks) == 1  # the ring's; the watch was never cut out
    assert cached == {"RING-0001": "synced", "WATCH-0002": "sku_not_found"}


def test_a_featured_theme_becomes_the_first_image_once() -> None:
    """A featured theme's composite is moved to the front of the product's media, once:
    a re-run finds it first and sends nothing; other themes leave the order alone."""
    with FakeShopify(SCHEMA) as fake:
        pid = fake.add_product("Ring", ["R-1"], own_media=2)
        client = admin(fake)
        product = client.find_product("R-1")
        plain = client.publish(media("R-1", "ef" * 32, "marble"), product)
        assert not plain.featured and fake.attached(pid)[0] == "retailer-photo-0.jpg"
        request = dataclasses.replace(media("R-1", "ef" * 32), featured=True)
        first = client.publish(request, product)
        assert first.featured and fake.attached(pid)[0] == request.filename
        again = client.publish(request, product)
        assert not again.featured and not again.created
        assert fake.stats.reorders == 1
        assert len(fake.attached(pid)) == 4  # two of the shop's, two of ours, none twice
    assert fake.stats.invalid_documents == []
