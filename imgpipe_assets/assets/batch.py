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
from concurrent.futures import ThreadPoolExecutor
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


def _attempt(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, work: Work, key: str
) -> tuple[str, Any]:
    started = time.perf_counter()
    try:
        metadata = work(key)
    except ImgpipeError as exc:
        return "failed", (exc.code, exc.message)
    except Exception as exc:  # a bug in one partition must not sink the others
        context.log.exception(f"partition {key} failed unexpectedly")
        return "failed", ("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
    metadata.setdefault("seconds", round(time.perf_counter() - started, 3))
    return "ok", metadata


def _work_all(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    keys: Sequence[str],
    work: Work,
    on_error: OnError,
    workers: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """Each key's metadata, and each failed key's (code, message), recorded via on_error."""
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, tuple[str, str]] = {}
    if workers > 1 and len(keys) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
            outcomes = list(pool.map(lambda k: _attempt(context, work, k), keys))
    else:
        outcomes = [_attempt(context, work, k) for k in keys]
    for key, (kind, value) in zip(keys, outcomes, strict=True):
        if kind == "ok":
            results[key] = value
            continue
        failures[key] = value
        code, message = value
        context.log.error(f"partition {key} failed: {code}: {message}")
        try:
            on_error(key, code, message)
        except Exception:
            context.log.exception(f"could not record the failure of {key} in the jobs table")
    return results, failures


def _failure(keys: Sequence[str], results: dict, failures: dict) -> dg.Failure:
    return dg.Failure(
        description=f"{len(failures)} of {len(keys)} partitions failed: "
        + "; ".join(f"{k}: {c}: {m}" for k, (c, m) in failures.items()),
        metadata={
            "failed": dg.MetadataValue.json(
                {k: {"code": c, "message": m} for k, (c, m) in failures.items()}
            ),
            "succeeded": len(results),
        },
    )


def record_each(
    context: dg.OpExecutionContext,
    asset_key: dg.AssetKey,
    keys: Sequence[str],
    work: Work,
    on_error: OnError,
    workers: int = 1,
) -> int:
    """``materialize_each`` for an op that works on any set of an asset's partitions (not
    only a contiguous range): each success is recorded as that partition's materialisation;
    the op fails naming the failures. Returns the number of successes."""
    results, failures = _work_all(context, keys, work, on_error, workers)
    for key, metadata in results.items():
        context.log_event(
            dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata)
        )
    if failures:
        raise _failure(keys, results, failures)
    return len(results)


def materialize_each(
    context: dg.AssetExecutionContext,
    work: Work,
    on_error: OnError,
    workers: int = 1,
) -> dg.MaterializeResult:
    """Run ``work`` for every partition of the run, ``workers`` at a time (remote calls wait
    in parallel; local CPU work keeps 1), and report each partition's own outcome."""
    keys: Sequence[str] = context.partition_keys
    results, failures = _work_all(context, keys, work, on_error, workers)
    if failures:
        for key, metadata in results.items():
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=context.asset_key, partition=key, metadata=metadata
                )
            )
        raise _failure(keys, results, failures)
    if len(keys) == 1:
        return dg.MaterializeResult(metadata=results[keys[0]])
    return dg.MaterializeResult(
        metadata={
            "partitions": len(keys),
            "per_partition": dg.MetadataValue.json({k: _plain(v) for k, v in results.items()}),
        }
    )
