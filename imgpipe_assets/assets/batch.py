"""Running an asset over every partition of a run, one partition's failure sparing the rest.

A run may cover one partition (a click in the UI) or a range (the intake sensor, a
backfill). Each partition is worked on its own; a named error is written to its jobs row
and the others go on. If any failed, the successes are recorded as materialisations with
their own metadata and the step fails naming the failures, so the UI shows exactly which
partitions exist.

A range run that succeeds is recorded by Dagster as one materialisation per partition, all
with the same metadata (Dagster has no per-partition metadata for a range): imgpipe gives
it a short summary of the batch, and each partition's own metadata (object key, preview)
as an observation of that partition. Copying every partition's metadata into every event
would grow the event log with the square of the batch size.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import dagster as dg

from imgpipe_assets.errors import ImgpipeError, InternalError

Work = Callable[[str], dict[str, Any]]
OnError = Callable[[str, str, str], None]
log = logging.getLogger(__name__)
MAX_WARNINGS = 100  # partitions a range summary names under "warnings"


class Stage(NamedTuple):
    """The asset a piece of work materialises. A partition's stages run in order; a failed
    stage stops that partition's later stages, never another partition's. ``detail``: in a
    range run, each partition's own metadata is recorded as an observation of it."""

    asset_key: dg.AssetKey
    work: Work
    detail: bool = True


def preview(jpeg: bytes, alt: str = "preview") -> dg.MetadataValue:
    """A small inline image the UI shows in the materialisation's metadata."""
    return dg.MetadataValue.md(
        f"![{alt}](data:image/jpeg;base64,{base64.b64encode(jpeg).decode()})"
    )


def summary(keys: Sequence[str], by_key: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a range run's materialisations say of the whole batch: how many partitions,
    how many were made or found stored, time and cost, and which ones want a look."""
    statuses = Counter(str(m["status"]) for m in by_key.values() if "status" in m)
    warnings = {
        k: str(m["review_reasons"])
        for k, m in by_key.items()
        if m.get("review_reasons") not in (None, "none")
    }
    out: dict[str, Any] = {
        "partitions": len(keys),
        "first_partition": keys[0],
        "last_partition": keys[-1],
        **{f"{status.replace(' ', '_')}_count": n for status, n in sorted(statuses.items())},
        "seconds_total": round(sum(float(m.get("seconds", 0)) for m in by_key.values()), 3),
        "cost_usd_total": round(sum(float(m.get("cost_usd", 0)) for m in by_key.values()), 6),
        "detail": "each partition's metadata is in its observation of this run",
    }
    if warnings:
        out["warnings"] = dg.MetadataValue.json(dict(list(warnings.items())[:MAX_WARNINGS]))
    return out


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
        return "failed", (InternalError.code, f"{type(exc).__name__}: {exc}")
    metadata.setdefault("seconds", round(time.perf_counter() - started, 3))
    return "ok", metadata


Results = dict[dg.AssetKey, dict[str, dict[str, Any]]]  # asset -> partition -> metadata


def _attempt_stages(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    stages: Sequence[Stage],
    key: str,
) -> tuple[dict[dg.AssetKey, dict[str, Any]], tuple[str, str] | None]:
    done: dict[dg.AssetKey, dict[str, Any]] = {}
    for asset_key, work, _detail in stages:
        kind, value = _attempt(context, work, key)
        if kind != "ok":
            return done, value
        done[asset_key] = value
    return done, None


def _work_all(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    keys: Sequence[str],
    stages: Sequence[Stage],
    on_error: OnError,
    workers: int,
) -> tuple[Results, dict[str, tuple[str, str]]]:
    """Each stage's metadata per key, and each failed key's (code, message), recorded via
    on_error."""
    results: Results = {stage.asset_key: {} for stage in stages}
    failures: dict[str, tuple[str, str]] = {}
    if workers > 1 and len(keys) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
            outcomes = list(pool.map(lambda k: _attempt_stages(context, stages, k), keys))
    else:
        outcomes = [_attempt_stages(context, stages, k) for k in keys]
    for key, (done, failure) in zip(keys, outcomes, strict=True):
        for asset_key, metadata in done.items():
            results[asset_key][key] = metadata
        if failure is None:
            continue
        failures[key] = failure
        code, message = failure
        context.log.error(f"partition {key} failed: {code}: {message}")
        try:
            on_error(key, code, message)
        except Exception:
            context.log.exception(f"could not record the failure of {key} in the jobs table")
    return results, failures


def _failure(keys: Sequence[str], failures: dict) -> dg.Failure:
    return dg.Failure(
        description=f"{len(failures)} of {len(keys)} partitions failed: "
        + "; ".join(f"{k}: {c}: {m}" for k, (c, m) in failures.items()),
        metadata={
            "failed": dg.MetadataValue.json(
                {k: {"code": c, "message": m} for k, (c, m) in failures.items()}
            ),
            "succeeded": len(keys) - len(failures),
        },
    )


def _log_each(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    results: Results,
    event: type[dg.AssetMaterialization] | type[dg.AssetObservation] = dg.AssetMaterialization,
) -> None:
    for asset_key, by_key in results.items():
        for key, metadata in by_key.items():
            context.log_event(event(asset_key=asset_key, partition=key, metadata=metadata))


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
    results, failures = _work_all(context, keys, [Stage(asset_key, work)], on_error, workers)
    _log_each(context, results)
    if failures:
        raise _failure(keys, failures)
    return len(results[asset_key])


def materialize_stages(
    context: dg.AssetExecutionContext,
    stages: Sequence[Stage],
    on_error: OnError,
    workers: int = 1,
) -> list[dg.MaterializeResult]:
    """Run each partition of the run through ``stages`` (one per asset of a multi-asset),
    ``workers`` partitions at a time (remote calls wait in parallel; local CPU work keeps
    few), and report each partition's own outcome per asset.

    If any partition failed, the successes are logged as their own materialisations and
    the step fails naming the failures. Otherwise one result per asset covers the run: a
    single partition's own metadata, or a range's summary with each partition's metadata
    logged as its observation.
    """
    keys: Sequence[str] = context.partition_keys
    results, failures = _work_all(context, keys, stages, on_error, workers)
    if failures:
        _log_each(context, results)
        raise _failure(keys, failures)
    if len(keys) == 1:
        return [dg.MaterializeResult(asset_key=a, metadata=m[keys[0]]) for a, m in results.items()]
    detailed = {s.asset_key for s in stages if s.detail}
    _log_each(context, {a: m for a, m in results.items() if a in detailed}, dg.AssetObservation)
    return [
        dg.MaterializeResult(asset_key=a, metadata=summary(keys, m)) for a, m in results.items()
    ]


def materialize_each(
    context: dg.AssetExecutionContext,
    work: Work,
    on_error: OnError,
    workers: int = 1,
) -> dg.MaterializeResult:
    """``materialize_stages`` for a single asset: ``work`` for every partition of the run."""
    (result,) = materialize_stages(context, [Stage(context.asset_key, work)], on_error, workers)
    return result
