"""Running an asset over every partition of a run, one partition's failure sparing the rest.

A run may cover one partition (a click in the UI) or a range (the intake sensor, a
backfill): the events are the same. Each partition is worked on its own and, when it
succeeds, recorded as its own materialisation carrying its own metadata (storage key, size,
cost, timings, preview), so the UI's partition page shows what that partition made. A named
error is written to the partition's jobs row and the others go on; the step then fails
naming exactly the partitions that did not make it. One event per partition, each with its
own metadata only: the event log grows with the batch, not with its square.

The assets run this with ``output_required=False``. A run of one partition (a click in the
UI) yields its result as the step's output, so assets downstream in the same run go on; a
range run records each partition's materialisation itself and yields nothing (Dagster's
own materialisation of a range would give every partition one shared set of metadata), so
a range of several assets runs as one run per asset, as the sensors launch them.
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
from imgpipe_assets.stages.outcome import Outcome

# A partition's stage returns its outcome, or None when this run leaves the partition alone
# (a composite waiting for a person is not published automatically).
Work = Callable[[str], Outcome | None]
OnError = Callable[[str, str, str], None]
log = logging.getLogger(__name__)


class Stage(NamedTuple):
    """The asset a piece of work materialises. A partition's stages run in order; a failed
    stage stops that partition's later stages, never another partition's."""

    asset_key: dg.AssetKey
    work: Work


def preview(jpeg: bytes, alt: str = "preview") -> dg.MetadataValue:
    """A small inline image the UI shows in the materialisation's metadata."""
    return dg.MetadataValue.md(
        f"![{alt}](data:image/jpeg;base64,{base64.b64encode(jpeg).decode()})"
    )


def metadata(outcome: Outcome) -> dict[str, Any]:
    """A stage's outcome as a materialisation's metadata: key and link first, then status,
    cost and timing, the stage's facts, and the preview."""
    md: dict[str, Any] = {}
    if outcome.storage_key:
        md["storage_key"] = outcome.storage_key
    if outcome.uri:
        md["uri"] = dg.MetadataValue.url(outcome.uri)
    md["status"] = outcome.status
    md["cost_usd"] = outcome.cost_usd
    md["seconds"] = outcome.seconds
    for name, value in outcome.facts.items():
        md[name] = dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
    if outcome.warnings:
        md["warnings"] = "; ".join(outcome.warnings)
    if outcome.preview_jpeg:
        md["preview"] = preview(outcome.preview_jpeg, outcome.preview_alt)
    return md


def summary(keys: Sequence[str], by_key: dict[str, dict[str, Any]]) -> str:
    """One line on the whole batch for the run's log: counts, time, cost, doubts."""
    statuses = Counter(str(m["status"]) for m in by_key.values() if "status" in m)
    doubtful = sum(1 for m in by_key.values() if m.get("review_reasons") not in (None, "none"))
    seconds = sum(float(m.get("seconds", 0)) for m in by_key.values())
    cost = sum(float(m.get("cost_usd", 0)) for m in by_key.values())
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    return (
        f"{len(by_key)} of {len(keys)} partitions ({counts or 'none'}), {seconds:.1f} s of "
        f"work, ${cost:.4f}" + (f", {doubtful} held for review" if doubtful else "")
    )


def _attempt(
    context: dg.OpExecutionContext | dg.AssetExecutionContext, work: Work, key: str
) -> tuple[str, Any]:
    started = time.perf_counter()
    try:
        outcome = work(key)
    except ImgpipeError as exc:
        return "failed", (exc.code, exc.message)
    except Exception as exc:  # a bug in one partition must not sink the others
        context.log.exception(f"partition {key} failed unexpectedly")
        return "failed", (InternalError.code, f"{type(exc).__name__}: {exc}")
    if outcome is None:
        return "left", None
    if outcome.seconds is None:
        outcome.seconds = round(time.perf_counter() - started, 3)
    for warning in outcome.warnings:
        context.log.warning(f"partition {key}: {warning}")
    return "ok", metadata(outcome)


Results = dict[dg.AssetKey, dict[str, dict[str, Any]]]  # asset -> partition -> metadata


def _attempt_stages(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    stages: Sequence[Stage],
    key: str,
) -> tuple[dict[dg.AssetKey, dict[str, Any]], tuple[str, str] | None]:
    done: dict[dg.AssetKey, dict[str, Any]] = {}
    for asset_key, work in stages:
        kind, value = _attempt(context, work, key)
        if kind == "left":
            break
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


def _log_each(context: dg.OpExecutionContext | dg.AssetExecutionContext, results: Results) -> None:
    for asset_key, by_key in results.items():
        for key, metadata in by_key.items():
            context.log_event(
                dg.AssetMaterialization(asset_key=asset_key, partition=key, metadata=metadata)
            )


def materialize_partitions(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    stages: Sequence[Stage],
    on_error: OnError,
    keys: Sequence[str] | None = None,
    workers: int = 1,
) -> list[dg.MaterializeResult]:
    """Run each partition (the run's own, or ``keys``) through ``stages`` (one per asset of
    a multi-asset; a failed stage stops that partition's later stages only), ``workers``
    partitions at a time (remote calls wait in parallel; local CPU work keeps few); fail
    naming the failures.

    Returns what an asset yields: for a run of one partition of an asset, its results; for
    anything else nothing, each partition's materialisation having been recorded here."""
    keys = list(context.partition_keys if keys is None else keys)
    results, failures = _work_all(context, keys, stages, on_error, workers)
    for stage in stages:
        context.log.info(
            f"{stage.asset_key.to_user_string()}: {summary(keys, results[stage.asset_key])}"
        )
    own_output = isinstance(context, dg.AssetExecutionContext) and len(keys) == 1
    if failures or not own_output:
        _log_each(context, results)
    if failures:
        raise _failure(keys, failures)
    if not own_output:
        return []
    return [
        dg.MaterializeResult(asset_key=a, metadata=m[keys[0]])
        for a, m in results.items()
        if keys[0] in m
    ]
