"""The production stack end to end, every integration over a real socket: `dagster dev`
(webserver + daemon), the webhook receiver, S3 (moto's server), Replicate and Shopify
(local stand-ins speaking their APIs; Shopify's GraphQL checked against the Admin schema),
and the jobs table in PostgreSQL. Signed webhooks for three SKUs go in (one photo is
truncated); composites land in the bucket, each is attached to its product once, nothing is
paid twice, and the UI's GraphQL reports the same partitions as the jobs table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer
from sqlalchemy import select

from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.fakes.replicate_server import FakeReplicate
from imgpipe_resources.fakes.shopify_server import FakeShopify
from imgpipe_resources.jms.receiver import PATH
from imgpipe_resources.jms.signing import sign
from imgpipe_resources.settings import Settings
from tests.helpers import SHARED, SMALL_THEMES, graphql, models_dir, wait_for_jobs, wait_until
from tests.servers import Reply, serve

SECRET = "e2e-prod-secret"
BUCKET = "imgpipe-e2e"
SCHEMA = SHARED / "schemas" / "shopify-admin-schema-2025-01.json.gz"
pytestmark = pytest.mark.slow


@pytest.fixture
def moto() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=BUCKET)
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def replicate() -> Iterator[FakeReplicate]:
    with FakeReplicate(latency_s=0.5) as fake:
        yield fake


@pytest.fixture
def shop() -> Iterator[FakeShopify]:
    with FakeShopify(SCHEMA if SCHEMA.is_file() else None) as fake:
        yield fake


@pytest.fixture
def env(
    tmp_path: Path, moto: str, replicate: FakeReplicate, shop: FakeShopify, postgres_url: str
) -> dict[str, str]:
    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {
        "IMGPIPE_ENV": "prod",  # S3, Replicate cut-outs; Shopify chosen below
        "IMGPIPE_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "IMGPIPE_THEMES": str(themes),
        "IMGPIPE_MODELS_DIR": str(models_dir()),
        "IMGPIPE_DATABASE_URL": postgres_url,
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": moto,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "REPLICATE_API_TOKEN": "r8_e2e",
        "REPLICATE_BASE_URL": replicate.url,
        "IMGPIPE_PUBLISHER": "shopify",
        "SHOPIFY_STORE_DOMAIN": "imgpipe-e2e.myshopify.com",
        "SHOPIFY_ADMIN_TOKEN": "shpat_e2e",
        "SHOPIFY_ADMIN_URL": shop.url,
        "JMS_WEBHOOK_SECRET": SECRET,
        "JMS_ALLOWED_IMAGE_HOSTS": "localhost",
    }


def test_prod_stack_from_signed_webhooks_to_shopify(
    env: dict[str, str],
    receiver: str,
    dagster_dev: str,
    replicate: FakeReplicate,
    shop: FakeShopify,
    sample_photos: dict,
) -> None:
    watch = sample_photos["WATCH-0002"].read_bytes()
    ring = sample_photos["RING-0001"].read_bytes()
    broken = watch[: len(watch) // 3]
    products = {sku: shop.add_product(f"Product {sku}", [sku]) for sku in ("W-1", "R-1", "B-1")}
    photos = {"W-1": watch, "R-1": ring, "B-1": broken}
    settings = Settings.from_env(env)
    with serve(
        {
            f"/{sku}.jpg": (lambda d: lambda q, h: Reply(200, d))(data)
            for sku, data in photos.items()
        }
    ) as host:
        for sku, data in photos.items():
            body = json.dumps(
                {
                    "event": "image.created",
                    "sku": sku,
                    "imageUrl": f"{host}/{sku}.jpg",
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            ).encode()
            for _ in range(2):  # a re-delivered webhook changes nothing
                response = httpx.post(receiver + PATH, content=body, headers=sign(body, SECRET))
                assert response.status_code in (200, 202), response.text

        wanted = {("W-1", "white"), ("W-1", "marble"), ("R-1", "white"), ("R-1", "marble")}
        states = wait_for_jobs(
            settings.database_url,
            lambda states: (
                all(states.get(k) == "DONE" for k in wanted)
                and states.get(("B-1", "white")) == "FAILED"
                and {states.get((sku, "night")) for sku in ("W-1", "R-1")} == {"AWAITING_REVIEW"}
            ),
            timeout=300,
        )
    assert all(states.get(k) == "DONE" for k in wanted), states
    assert states[("W-1", "night")] == states[("R-1", "night")] == "AWAITING_REVIEW"

    with session_scope(settings.database_url) as session:
        broken_jobs = session.scalars(select(Job).where(Job.sku == "B-1")).all()
        assert {j.error_code for j in broken_jobs} == {"TRUNCATED_IMAGE"}
        costs = {j.sku: float(j.cost_usd) for j in session.scalars(select(Job))}
    assert costs["W-1"] > 0 and costs["B-1"] == 0  # a broken photo is never sent to be paid for

    # Replicate: one paid cut-out per good photo, none for the broken one.
    assert sum(replicate.stats.creates.values()) == 2

    # S3: originals, cut-outs and every theme's composite, in the bucket.
    s3 = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    for sku in ("W-1", "R-1"):
        names = sorted(k.rsplit("/", 1)[-1] for k in keys if k.startswith(f"composites/{sku}/"))
        assert names == ["marble.webp", "night.png", "white.jpg"], keys
    assert sum(k.startswith("masks/") for k in keys) == 2

    # Shopify: each auto theme attached once to its product, every document schema-valid.
    for sku in ("W-1", "R-1"):
        attached = [f for f in shop.attached(products[sku]) if f.startswith("imgpipe-")]
        assert sorted(a.rsplit("-", 1)[-1] for a in attached) == ["marble.webp", "white.jpg"]
    assert shop.attached(products["B-1"]) == ["retailer-photo-0.jpg"]
    assert set(shop.stats.attachments.values()) == {1}
    assert shop.stats.invalid_documents == []

    # The UI's GraphQL: the same images, and the same published partitions.
    data = graphql(
        dagster_dev,
        """{ assetNodes { assetKey { path }
        partitionKeysByDimension { name partitionKeys } } }""",
    )
    mask = next(n for n in data["assetNodes"] if n["assetKey"]["path"] == ["mask"])
    images = mask["partitionKeysByDimension"][0]["partitionKeys"]
    assert sorted(k.split("~")[0] for k in images) == ["B-1", "R-1", "W-1"]
    # A jobs row is DONE inside the step; its materialisation is stored as the step ends.
    published = wait_until(
        lambda: graphql(
            dagster_dev,
            """{ assetNodes(assetKeys: [{path: ["shopify_media"]}]) {
                 partitionStats { numMaterialized } } }""",
        )["assetNodes"][0]["partitionStats"]["numMaterialized"],
        lambda n: n >= len(wanted),
        timeout=60,
    )
    assert published == len(wanted)
