"""S3 storage against moto in server mode: a real HTTP endpoint that boto3 talks to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from imgpipe_assets.errors import SourceMissing, StorageKeyError
from imgpipe_resources.s3 import S3ObjectStore

CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _host, port = server.get_host_and_port()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def store(moto_endpoint: str, request: pytest.FixtureRequest) -> S3ObjectStore:
    bucket = "imgpipe-" + request.node.name.lower().replace("_", "-")[:40]
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDS).create_bucket(
        Bucket=bucket
    )
    s3 = S3Resource(endpoint_url=moto_endpoint, region_name="us-east-1", **CREDS)
    return S3ObjectStore(s3=s3, bucket=bucket, prefix="imgpipe/")


def bucket_env(endpoint: str, bucket: str, home: Path) -> dict[str, str]:
    """A new bucket on moto, and the variables that point imgpipe's S3 storage at it (the
    data directory ``home``, the weights the tests use)."""
    from tests.helpers import models_dir

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDS).create_bucket(
        Bucket=bucket
    )
    return {
        "S3_BUCKET": bucket,
        "S3_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": CREDS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDS["aws_secret_access_key"],
        "IMGPIPE_HOME": str(home),
        "IMGPIPE_MODELS_DIR": str(models_dir()),
    }


def test_upload_exists_fetch_and_cached_reupload(store: S3ObjectStore) -> None:
    key = "masks/" + "ab" * 32 + ".png"
    assert not store.exists(key)
    first = store.put(key, b"mask bytes", "image/png")
    assert (first.cached, first.size) == (False, 10)
    assert store.exists(key) and store.get(key) == b"mask bytes"
    again = store.put(key, b"mask bytes", "image/png")
    assert again.cached
    changed = store.put(key, b"other bytes", "image/png")
    assert not changed.cached and store.get(key) == b"other bytes"
    head = store.client().head_object(Bucket=store.bucket, Key="imgpipe/" + key)
    assert head["ContentType"] == "image/png"
    assert "immutable" in head["CacheControl"]


def test_presigned_url_fetches_the_object_over_http(store: S3ObjectStore) -> None:
    key = "composites/SKU-1/" + "cd" * 32 + "/white.jpg"
    store.put(key, b"\xff\xd8jpeg", "image/jpeg")
    url = store.uri(key)
    assert "X-Amz-Signature" in url or "Signature" in url
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200 and response.content == b"\xff\xd8jpeg"
    assert response.headers["content-type"] == "image/jpeg"
    assert "max-age=3600" in response.headers.get("cache-control", "")


def test_missing_objects_and_bad_keys_are_named(store: S3ObjectStore) -> None:
    with pytest.raises(SourceMissing):
        store.get("masks/none.png")
    with pytest.raises(StorageKeyError):
        store.put("../escape", b"x", "text/plain")


def test_cdn_base_url_replaces_presigning(store: S3ObjectStore) -> None:
    cdn = S3ObjectStore(
        s3=store.s3, bucket=store.bucket, prefix="imgpipe/", cdn_base_url="https://cdn.shop.test/"
    )
    assert cdn.uri("masks/x.png") == "https://cdn.shop.test/imgpipe/masks/x.png"
    assert cdn.public_url("masks/x.png") == cdn.uri("masks/x.png")
    # moto serves plain http on loopback: not a URL Replicate or Shopify could fetch.
    assert store.public_url("masks/x.png") is None


def test_prod_environment_selects_s3_by_configuration_alone(
    moto_endpoint: str,
    tmp_path,
    sample_photos: dict,  # type: ignore[no-untyped-def]
) -> None:
    """IMGPIPE_ENV=prod pointed at moto and the fake Replicate server: the demo's whole chain
    cuts out on "Replicate" and writes every stage to the bucket."""
    from click.testing import CliRunner

    from imgpipe_assets.cli import main
    from imgpipe_assets.environments import ConfigurationError, storage_for
    from imgpipe_resources.fakes.replicate_server import FakeReplicate
    from imgpipe_resources.settings import Settings
    from tests.helpers import SMALL_THEMES

    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    env = {
        **bucket_env(moto_endpoint, "prod-bucket", tmp_path / "home"),
        "IMGPIPE_ENV": "prod",
        "IMGPIPE_PUBLISHER": "outbox",
        "IMGPIPE_THEMES": str(themes),
        "DAGSTER_HOME": str(tmp_path / "dh"),
    }
    assert isinstance(storage_for(Settings.from_env(env)), S3ObjectStore)
    with pytest.raises(ConfigurationError, match="S3_BUCKET"):
        storage_for(Settings.from_env({"IMGPIPE_STORAGE": "s3"}))
    with pytest.raises(ConfigurationError, match="IMGPIPE_STORAGE"):
        Settings.from_env({"IMGPIPE_STORAGE": "ftp"})

    with FakeReplicate(latency_s=0.2) as fake:
        env = {**env, "REPLICATE_BASE_URL": fake.url, "REPLICATE_API_TOKEN": "r8_test"}
        result = CliRunner().invoke(
            main, ["demo", str(sample_photos["RING-0001"])], env=env, catch_exceptions=False
        )
        assert sum(fake.stats.creates.values()) == 1  # the cut-out was made "on Replicate"
    assert result.exit_code == 0, result.output
    assert "s3://prod-bucket/composites/RING-0001/" in result.output
    listed = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDS
    ).list_objects_v2(Bucket="prod-bucket")
    keys = {o["Key"].split("/")[0] for o in listed["Contents"]}
    assert keys == {"originals", "masks", "backgrounds", "composites"}
    assert not (tmp_path / "home" / "composites").exists()


def test_local_files_have_no_public_url(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Callers then send the bytes themselves (a data URI, a staged upload)."""
    from imgpipe_resources.storage import LocalObjectStore

    local = LocalObjectStore(root=str(tmp_path))
    local.put("masks/x.png", b"png", "image/png")
    assert local.public_url("masks/x.png") is None


def test_ingest_on_s3_storage_puts_the_original_in_the_bucket(
    moto_endpoint: str,
    tmp_path,
    sample_photos: dict,  # type: ignore[no-untyped-def]
) -> None:
    """`imgpipe ingest` writes through the configured store: with S3 the original is in the
    bucket under its content address, and nothing is written under IMGPIPE_HOME."""
    import hashlib

    from click.testing import CliRunner

    from imgpipe_assets.cli import main

    env = {
        **bucket_env(moto_endpoint, "ingest-bucket", tmp_path / "home"),
        "IMGPIPE_STORAGE": "s3",
    }
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **CREDS)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    photo = sample_photos["WATCH-0002"]
    result = runner.invoke(main, ["ingest", str(photo)], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "ACCEPTED" in result.output, result.output
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    stored = client.get_object(Bucket="ingest-bucket", Key=f"originals/WATCH-0002/{sha}.jpg")
    assert stored["Body"].read() == photo.read_bytes()
    assert not (tmp_path / "home" / "originals").exists()
