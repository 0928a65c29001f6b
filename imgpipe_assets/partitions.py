"""Partitions: one dynamic key per source image, one static key per theme."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

IMAGE = "image"
THEME = "theme"

image_partitions = dg.DynamicPartitionsDefinition(name="images")


def theme_partitions(theme_names: Sequence[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(theme_names))


def image_theme_partitions(theme_names: Sequence[str]) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition(
        {IMAGE: image_partitions, THEME: theme_partitions(theme_names)}
    )


def split_multi_key(key: str | dg.MultiPartitionKey) -> tuple[str, str]:
    """(image key, theme) of an image x theme partition key."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims[IMAGE], dims[THEME]
    # Dimension keys are joined with '|' in dimension-name order: image, then theme.
    image, theme = str(key).split("|")
    return image, theme


def multi_key(image: str, theme: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({IMAGE: image, THEME: theme})


def range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run materialise every partition from ``first`` to ``last``."""
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }
