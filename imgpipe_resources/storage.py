"""Object storage: one interface, a local-files implementation (S3 sits beside it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field

from imgpipe_resources.files import LocalFiles, StoredObject

__all__ = ["LocalObjectStore", "ObjectStore", "StoredObject"]


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

    @property
    def _files(self) -> LocalFiles:
        return LocalFiles(Path(self.root))

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        return self._files.put(key, data, content_type)

    def get(self, key: str) -> bytes:
        return self._files.get(key)

    def exists(self, key: str) -> bool:
        return self._files.exists(key)

    def uri(self, key: str) -> str:
        return self._files.uri(key)

    def delete(self, key: str) -> None:
        self._files.delete(key)

    def location(self, key: str) -> str:
        return str(self._files.path(key))
