import pytest

from imgpipe_assets.errors import InvalidSku, StorageKeyError
from imgpipe_resources.keys import (
    check_storage_key,
    composite_key,
    image_partition_key,
    mask_key,
    split_partition_key,
    validate_sku,
)

SHA = "ab" * 32


@pytest.mark.parametrize(
    "sku",
    [
        "../etc",
        "a/b",
        "a|b",
        "a,b",
        "a[1]",
        "a...b",
        "a..b",
        "",
        " lead",
        "x" * 65,
        "é",
        "a b",
        ".hidden",
        "-dash",
        "a\x00b",
        "a\\b",
    ],
)
def test_unsafe_skus_are_refused(sku: str) -> None:
    with pytest.raises(InvalidSku):
        validate_sku(sku)


@pytest.mark.parametrize("sku", ["VWS200433868", "RING-0001", "a.b_c-d", "9" * 64])
def test_ordinary_skus_pass(sku: str) -> None:
    assert validate_sku(sku) == sku


@pytest.mark.parametrize("sku", ["VWS200433868", "a.b_c-d", "Z" * 64])
def test_partition_keys_avoid_dagster_separators(sku: str) -> None:
    key = image_partition_key(sku, SHA)
    for bad in ("|", ",", "[", "]", "...", "/"):
        assert bad not in key
    assert split_partition_key(key) == (sku, SHA[:12])


def test_partition_key_is_stable_and_distinguishes_photos() -> None:
    assert image_partition_key("A", SHA) == image_partition_key("A", SHA)
    assert image_partition_key("A", SHA) != image_partition_key("A", "cd" * 32)
    assert image_partition_key("A", SHA) != image_partition_key("B", SHA)


def test_storage_keys_follow_the_layout() -> None:
    assert mask_key(SHA) == f"masks/{SHA}.png"
    assert composite_key("RING-1", SHA, "studio-white", "jpg") == (
        f"composites/RING-1/{SHA}/studio-white.jpg"
    )


@pytest.mark.parametrize("key", ["../x", "a/../b", "/abs", "a//b", "a/./b", ""])
def test_storage_keys_cannot_escape(key: str) -> None:
    with pytest.raises(StorageKeyError):
        check_storage_key(key)


def test_bad_sha_is_refused() -> None:
    with pytest.raises(InvalidSku):
        image_partition_key("A", "not-a-sha")
