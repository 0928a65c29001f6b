"""Stored objects as files under one directory, with the key layout S3 uses.

Plain Python: the ``LocalObjectStore`` resource stores through it, and ``imgpipe ingest``
writes originals through it directly, without loading Dagster.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from imgpipe_assets.errors import SourceMissing
from imgpipe_resources.keys import check_storage_key


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    cached: bool  # the same bytes were already stored: nothing was written
    uri: str


@dataclass(frozen=True)
class LocalFiles:
    """Objects as files under ``root``; a key never reaches outside it."""

    root: Path

    def path(self, key: str) -> Path:
        root = self.root.absolute()
        path = (root / check_storage_key(key)).absolute()
        if root not in path.parents:
            raise SourceMissing(f"key {key!r} escapes the store")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self.path(key)
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
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise SourceMissing(f"no stored object at {key}") from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)
