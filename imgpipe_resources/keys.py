"""Names derived from a source image: SKU validation, partition keys and storage keys.

Partition keys must be unique, stable and readable, and must never contain ``|`` (Dagster's
multi-partition separator), ``,`` ``[`` ``]`` ``...`` (they break the UI's range strings) or
``/`` (it nests paths). A key is ``{sku}~{first 12 hex of sha256}``; the SKU alphabet
excludes every one of those characters, so the key is safe by construction.
"""

from __future__ import annotations

import re

from imgpipe_assets.errors import InvalidSku, StorageKeyError

SKU_MAX_LENGTH = 64
_SKU_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_KEY_RE = re.compile(r"^(?P<sku>[A-Za-z0-9][A-Za-z0-9._-]*)~(?P<short>[0-9a-f]{12,64})$")
_STORAGE_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~=-]*(/[A-Za-z0-9][A-Za-z0-9._~=-]*)*$")
SHORT_SHA = 12


def validate_sku(sku: object) -> str:
    """Return the SKU unchanged if it is safe for keys, paths and URLs; raise otherwise."""
    if not isinstance(sku, str) or not sku:
        raise InvalidSku("SKU must be a non-empty string")
    if len(sku) > SKU_MAX_LENGTH:
        raise InvalidSku(f"SKU is {len(sku)} characters long; the limit is {SKU_MAX_LENGTH}")
    if not _SKU_RE.fullmatch(sku) or ".." in sku:
        raise InvalidSku(
            f"SKU {sku[:80]!r} may only hold letters, digits, '.', '_' and '-', must start with "
            "a letter or digit and must not contain '..'"
        )
    return sku


def validate_sha256(sha256: object) -> str:
    if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256.lower()):
        raise InvalidSku("sha256 must be 64 hexadecimal characters")
    return sha256.lower()


def image_partition_key(sku: str, sha256: str, digits: int = SHORT_SHA) -> str:
    """``{sku}~{sha256 prefix}``; callers lengthen the prefix if two photos share one."""
    return f"{validate_sku(sku)}~{validate_sha256(sha256)[:digits]}"


def split_partition_key(key: str) -> tuple[str, str]:
    """Return (sku, short sha) of an image partition key."""
    match = _KEY_RE.fullmatch(key)
    if not match:
        raise InvalidSku(f"{key!r} is not an image partition key")
    return match["sku"], match["short"]


def check_storage_key(key: str) -> str:
    """Refuse keys that could escape the store's root ('..', absolute paths, odd characters)."""
    if ".." in key or not _STORAGE_KEY_RE.fullmatch(key):
        raise StorageKeyError(f"refusing storage key {key!r}")
    return key


def original_key(sku: str, sha256: str, ext: str) -> str:
    return check_storage_key(f"originals/{validate_sku(sku)}/{validate_sha256(sha256)}.{ext}")


def mask_key(sha256: str) -> str:
    # Content-addressed: a photo shared by two SKUs is cut out once.
    return check_storage_key(f"masks/{validate_sha256(sha256)}.png")


def cutout_key(sha256: str, framing: str) -> str:
    """The cut-out framed on a theme's canvas (what a generative background is painted around)."""
    return check_storage_key(f"cutouts/{validate_sha256(sha256)}/{framing}.png")


def background_key(theme: str, fingerprint: str, ext: str = "png") -> str:
    return check_storage_key(f"backgrounds/{theme}/{fingerprint}.{ext}")


def composite_key(sku: str, sha256: str, theme: str, ext: str, size: int | None = None) -> str:
    """The theme's composite; with ``size``, its smaller copy of that long side in pixels."""
    name = f"{theme}={size}" if size else theme
    return check_storage_key(
        f"composites/{validate_sku(sku)}/{validate_sha256(sha256)}/{name}.{ext}"
    )
