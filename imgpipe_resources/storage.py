"""Object storage: one interface, a local-files implementation (S3 sits beside it)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from imgpipe_assets.errors import SourceMissing
from imgpipe_resources.keys import check_storage_key


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    cached: bool  # the same bytes were already stored: nothing was written
    uri: str


class ObjectStore(dg.ConfigurableResource, ABC):
    """Where every stage's output lives, under keys derived from the partition."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    @abstractmethod
    def get(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where a person (or Shopify) can fetch the object."""

    def public_url(self, key: str) -> str | None:
        """An https URL anyone (Replicate, Shopify) can fetch the object from, or None when
        the store has none (local files): callers then send the bytes themselves."""
        uri = self.uri(key)
        return uri if uri.startswith("https://") else None

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def location(self, key: str) -> str:
        """Where the object is, for a person to read (a path or an s3:// address)."""


class LocalObjectStore(ObjectStore):
    """Files under one directory, with the same key layout S3 uses."""

    root: str = Field(description="Directory that holds every stored object")

    def _path(self, key: str) -> Path:
        root = Path(self.root).absolute()
        path = (root / check_storage_key(key)).absolute()
        if root not in path.parents:
            raise SourceMissing(f"key {key!r} escapes the store")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self._path(key)
        digest = hashlib.sha256(data).hexdigest()
        if (
            path.is_file()
            and path.stat().st_size == len(data)
            and hashlib.sha256(path.read_bytes()).hexdigest() == digest
        ):
            return StoredObject(key, len(data), digest, True, self.uri(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash never leaves a half-written object under the real key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, len(data), digest, False, self.uri(key))

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SourceMissing(f"no stored object at {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def location(self, key: str) -> str:
        return str(self._path(key))
