"""Running an asset over every partition of a run, one partition's failure sparing the rest.

A run may cover one partition (a click in the UI) or a range (the intake sensor, a
backfill). Each partition is worked on its own; a named error is written to its jobs row
and the others go on. If any failed, the successes are recorded as materialisations with
their own metadata and the step fails naming the failures, so the UI shows exactly which
partitions exist.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from imgpipe_resources.errors import ImgpipeError

Work = Callable[[str], dict[str, Any]]
OnError = Callable[[str, str, str], None]
log = logging.getLogger(__name__)


def preview(jpeg: bytes, alt: str = "preview") -> dg.MetadataValue:
    """A small inline image the UI shows in the materialisation's metadata."""
    return dg.MetadataValue.md(
        f"![{alt}](data:image/jpeg;base64,{base64.b64encode(jpeg).decode()})"
    )


def _plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool)}


def materialize_each(
    context: dg.AssetExecutionContext,
    work: Work,
    on_error: OnError,
) -> dg.MaterializeResult:
    keys: Sequence[str] = context.partition_keys
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, tuple[str, str]] = {}
    for key in keys:
        started = time.perf_counter()
        try:
            metadata = work(key)
        except ImgpipeError as exc:
            failures[key] = (exc.code, exc.message)
        except Exception as exc:  # a bug in one partition must not sink the others
            context.log.exception(f"partition {key} failed unexpectedly")
            failures[key] = ("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
        else:
            metadata.setdefault("seconds", round(time.perf_counter() - started, 3))
            results[key] = metadata
            continue
        code, message = failures[key]
        context.log.error(f"partition {key} failed: {code}: {message}")
        try:
            on_error(key, code, message)
        except Exception:
            context.log.exception(f"could not record the failure of {key} in the jobs table")

    if failures:
        for key, metadata in results.items():
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=context.asset_key, partition=key, metadata=metadata
                )
            )
        raise dg.Failure(
            description=f"{len(failures)} of {len(keys)} partitions failed: "
            + "; ".join(f"{k}: {c}: {m}" for k, (c, m) in failures.items()),
            metadata={
                "failed": dg.MetadataValue.json(
                    {k: {"code": c, "message": m} for k, (c, m) in failures.items()}
                ),
                "succeeded": len(results),
            },
        )
    if len(keys) == 1:
        return dg.MaterializeResult(metadata=results[keys[0]])
    return dg.MaterializeResult(
        metadata={
            "partitions": len(keys),
            "per_partition": dg.MetadataValue.json({k: _plain(v) for k, v in results.items()}),
        }
    )
