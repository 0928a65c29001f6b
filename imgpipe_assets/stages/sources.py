"""The bytes behind a partition: its original (fetched once, verified, kept), its cut-out."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image

from imgpipe_assets.errors import ChecksumMismatch, SourceMissing
from imgpipe_assets.imaging.decode import FORMATS, sniff
from imgpipe_assets.imaging.pipeline import Cutout, load_cutout
from imgpipe_resources.db.jobs import ImageRef
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.keys import original_key
from imgpipe_resources.storage import ObjectStore


def verify_sha256(data: bytes, expected: str) -> None:
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(
            f"source bytes hash to {actual[:12]}..., expected {expected[:12]}..."
        )


def source_bytes(
    storage: ObjectStore, ref: ImageRef, fetcher: ImageFetcher | None = None
) -> tuple[bytes, str]:
    """The original photo's bytes, verified against its sha256, and its storage key.

    Originals are stored content-addressed: at intake by ``imgpipe ingest``, or here on the
    first run for photos announced by URL (3JMS), so a re-run never downloads again.
    """
    if ref.original_key and storage.exists(ref.original_key):
        data = storage.get(ref.original_key)
        verify_sha256(data, ref.sha256)
        return data, ref.original_key
    url = ref.source_url or ""
    if fetcher is not None and url.startswith(("http://", "https://")):
        for ext in set(FORMATS.values()):
            key = original_key(ref.sku, ref.sha256, ext)
            if storage.exists(key):
                data = storage.get(key)
                verify_sha256(data, ref.sha256)
                return data, key
        data = fetcher.fetch(url)
        verify_sha256(data, ref.sha256)
        return data, store_original(storage, ref, data)
    raise SourceMissing(
        f"the original of {ref.sku} ({ref.sha256[:12]}) is not in storage and no fetchable "
        f"source is known (url: {url[:100] or 'none'})"
    )


def store_original(storage: ObjectStore, ref: ImageRef, data: bytes) -> str:
    """Keep a fetched photo under its content address; non-images are refused first."""
    info = sniff(data)
    key = original_key(ref.sku, ref.sha256, info.ext)
    storage.put(key, data, f"image/{info.format.lower()}")
    return key


def stored_cutout(storage: ObjectStore, key: str) -> Cutout:
    """The cut-out the ``mask`` asset stored at ``key``; SourceMissing when it is absent or
    in an older format."""
    if not storage.exists(key):
        raise SourceMissing(f"no cut-out stored at {key}")
    cut = load_cutout(storage.get(key))
    if cut is None:
        raise SourceMissing(f"{key} is a mask from an older version: re-materialise mask")
    return cut


def decode_plain(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
