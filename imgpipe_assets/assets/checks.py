"""``quality_gates``: the blocking asset check between a cut-out and everything after it.

The gates themselves (coverage, a product cut off by the frame, source resolution,
fragments, holes, agreement of the model and the backdrop key, transparency) live in
``imaging.gates``; this module reports them to Dagster per image partition, so the UI shows
which images failed which gate.

Intake runs cut out a whole batch in one run (a partition range), where Dagster has no per-
partition check step; there the ``mask`` asset records each image's evaluation itself
(``gate_evaluation``). Materialising one image from the UI runs this check as its own step,
which re-grades the stored cut-out.
"""

import dagster as dg

from imgpipe_assets.errors import SourceMissing
from imgpipe_assets.imaging import gates
from imgpipe_assets.partitions import image_partitions
from imgpipe_assets.stages.sources import stored_cutout
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.keys import mask_key
from imgpipe_resources.storage import ObjectStore

QUALITY_GATES = "quality_gates"
MASK = dg.AssetKey("mask")


def _verdict_metadata(verdicts: list[gates.Verdict]) -> dict[str, dg.MetadataValue]:
    meta: dict[str, dg.MetadataValue] = {
        v.gate: dg.MetadataValue.text(
            f"{v.outcome} ({v.value:g}){': ' + v.reason if v.reason else ''}"
        )
        for v in verdicts
    }
    stopped = gates.blocking(verdicts)
    meta["reason"] = dg.MetadataValue.text(
        "; ".join(f"{v.gate}: {v.reason}" for v in stopped) or "passed"
    )
    held = gates.doubtful(verdicts)
    meta["review"] = dg.MetadataValue.text(
        "; ".join(f"{v.gate}: {v.reason}" for v in held) + " (composites held for review)"
        if held
        else "none"
    )
    return meta


def _severity(verdicts: list[gates.Verdict]) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if gates.blocking(verdicts) else dg.AssetCheckSeverity.WARN


def gate_evaluation(partition_key: str, verdicts: list[gates.Verdict]) -> dg.AssetCheckEvaluation:
    """The check's result for one image, recorded from inside a range run."""
    return dg.AssetCheckEvaluation(
        asset_key=MASK,
        check_name=QUALITY_GATES,
        passed=not gates.blocking(verdicts),
        metadata=_verdict_metadata(verdicts),
        severity=_severity(verdicts),
        description="quality gates on the cut-out",
        blocking=True,
        partition=partition_key,
    )


@dg.asset_check(
    asset=MASK,
    name=QUALITY_GATES,
    partitions_def=image_partitions,
    blocking=True,
    description=(
        "Blocks an image whose cut-out is empty or the whole frame, cut in half by the frame, "
        "from a photo too small to publish, or shattered into fragments or holes. A doubtful "
        "cut-out (borderline values, the model and the backdrop key disagreeing, a "
        "see-through haze) passes with a warning and its composites wait for review. A "
        "failed gate stops the image's composites and publishing."
    ),
)
def quality_gates(
    context: dg.AssetCheckExecutionContext, db: JobsDatabase, storage: ObjectStore
) -> dg.AssetCheckResult:
    ref, _ = db.image(context.partition_key)
    key = mask_key(ref.sha256)
    try:
        cut = stored_cutout(storage, key)
    except SourceMissing as exc:
        return dg.AssetCheckResult(
            passed=False,
            metadata={"reason": exc.message},
            severity=dg.AssetCheckSeverity.ERROR,
        )
    verdicts = gates.grade(cut.stats)
    return dg.AssetCheckResult(
        passed=not gates.blocking(verdicts),
        metadata={**_verdict_metadata(verdicts), "storage_key": key},
        severity=_severity(verdicts),
    )


def check_runs_as_a_step(context: dg.AssetExecutionContext) -> bool:
    """Whether this run executes ``quality_gates`` as its own step (then the mask step must
    not record a second evaluation)."""
    name = quality_gates.node_def.name
    steps = context.run.step_keys_to_execute
    return name in steps if steps is not None else name in context.job_def.graph.node_dict
