"""S3 (or any S3-compatible store) behind the same interface as the local store."""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from imgpipe_assets.errors import SourceMissing
from imgpipe_resources.keys import check_storage_key
from imgpipe_resources.storage import ObjectStore, StoredObject

# Content-addressed prefixes never change under a key: clients may cache them for good.
IMMUTABLE = ("originals/", "masks/", "cutouts/", "backgrounds/")


def cache_control(key: str) -> str:
    if key.startswith(IMMUTABLE):
        return "public, max-age=31536000, immutable"
    return "public, max-age=3600"


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket under the same keys as local files.

    Uploads carry their content type, cache headers and sha256 (object metadata); an object
    already stored with the same sha256 is not uploaded again and is reported as cached.
    ``uri`` is a CDN URL when ``cdn_base_url`` is set, else a presigned GET URL.
    """

    s3: S3Resource
    bucket: str = Field(description="S3_BUCKET")
    prefix: str = Field(default="", description="Key prefix inside the bucket, e.g. imgpipe/")
    cdn_base_url: str | None = Field(default=None, description="S3_CDN_BASE_URL")
    presign_expiry_s: int = Field(default=3600, description="S3_PRESIGN_EXPIRY")
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def _key(self, key: str) -> str:
        return self.prefix + check_storage_key(key)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client().head_object(Bucket=self.bucket, Key=self._key(key)))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        head = self._head(key)
        if head is not None and head.get("Metadata", {}).get("sha256") == digest:
            return StoredObject(key, len(data), digest, True, self.uri(key))
        self.client().put_object(
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
            CacheControl=cache_control(key),
            Metadata={"sha256": digest},
        )
        return StoredObject(key, len(data), digest, False, self.uri(key))

    def get(self, key: str) -> bytes:
        try:
            response = self.client().get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise SourceMissing(f"no stored object at s3://{self.bucket}/{key}") from None
            raise
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def presign(self, key: str, expiry_s: int | None = None) -> str:
        return str(
            self.client().generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expiry_s or self.presign_expiry_s,
            )
        )

    def uri(self, key: str) -> str:
        if self.cdn_base_url:
            return f"{self.cdn_base_url.rstrip('/')}/{self._key(key)}"
        return self.presign(key)

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.bucket, Key=self._key(key))
