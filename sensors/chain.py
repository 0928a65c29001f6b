"""The chain sensor: a finished mask starts its image's render run (backgrounds, composites,
and publication where the theme publishes without review); composites a person made
without publishing them are published for the themes that publish automatically."""

import json

import dagster as dg

from imgpipe_assets.assets.themed import PUBLISH_TAG, SHOPIFY_MEDIA
from imgpipe_assets.jobs import PUBLISH_JOB, RENDER_JOB, publish_job, render_job
from imgpipe_assets.partitions import multi_key, range_tags, split_multi_key
from imgpipe_resources.themes import ThemeLibrary
from sensors.intake import INTAKE_BATCH

CHAIN_BATCH = 500
# Images per render run: an intake batch's worth, so each mask run is followed by one
# render run. A run's start-up costs seconds of CPU; a failed partition costs only itself.
RENDER_BATCH = INTAKE_BATCH
# Images per publishing run of one theme: the calls are small, the run's start-up is not.
PUBLISH_BATCH = 150


def _new_materializations(
    context: dg.SensorEvaluationContext, asset: str, after: int
) -> list[dg.EventLogRecord]:
    """New materialisations of ``asset`` from finished runs only, in storage order.

    A range run records its partitions' materialisations one event at a time, in no
    particular partition order, as its step ends; a tick in between would see a scattered
    part of the batch and split its renders into many small runs. Records from the first
    run still going onward wait for a later tick.
    """
    records_filter = dg.AssetRecordsFilter(
        asset_key=dg.AssetKey(asset), after_storage_id=after or None
    )

    def fetch() -> list[dg.EventLogRecord]:
        result = context.instance.fetch_materializations(
            records_filter, limit=CHAIN_BATCH, ascending=True
        )
        return list(result.records)

    finished = set()
    for run_id in {r.run_id for r in fetch()}:
        run = context.instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            finished.add(run_id)
    # Fetched again: a run that had finished before this read has every record written.
    ready = []
    for record in fetch() if finished else []:
        if record.run_id not in finished:
            break
        ready.append(record)
    return ready


def _blocks(indices: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted indices: [0, 1, 3] -> [(0, 1), (3, 3)]."""
    blocks: list[tuple[int, int]] = []
    for i in sorted(set(indices)):
        if blocks and blocks[-1][1] == i - 1:
            blocks[-1] = (blocks[-1][0], i)
        else:
            blocks.append((i, i))
    return blocks


def _range_request(
    run_key: str, job: str, first: str, last: str, tags: dict[str, str] | None = None
) -> dg.RunRequest:
    if first == last:
        return dg.RunRequest(run_key=run_key, job_name=job, partition_key=first, tags=tags)
    return dg.RunRequest(
        run_key=run_key, job_name=job, tags={**range_tags(first, last), **(tags or {})}
    )


def render_requests(
    context: dg.SensorEvaluationContext, masks: list[dg.EventLogRecord], themes: list[str]
) -> list[dg.RunRequest]:
    """One backgrounds + composite run per contiguous block of newly masked images.

    Images masked together are neighbours in the dynamic partition order (one intake
    batch), so each block is a single image-major range over every theme.
    """
    masked = {r.partition_key for r in masks if r.partition_key is not None}
    if not masked:
        return []
    order = context.instance.get_dynamic_partitions("images")
    position = {key: i for i, key in enumerate(order)}
    known = sorted(position[k] for k in masked if k in position)
    tag = masks[-1].storage_id
    requests = []
    for lo, hi in _blocks(known):
        for start in range(lo, hi + 1, RENDER_BATCH):
            stop = min(hi, start + RENDER_BATCH - 1)
            requests.append(
                _range_request(
                    f"render:{order[start]}:{order[stop]}:{tag}",
                    RENDER_JOB,
                    str(multi_key(order[start], themes[0])),
                    str(multi_key(order[stop], themes[-1])),
                )
            )
    return requests


def publish_requests(
    context: dg.SensorEvaluationContext,
    composites: list[dg.EventLogRecord],
    themes: list[str],
    auto: set[str],
) -> list[dg.RunRequest]:
    """Publication of composites a run made without publishing them (a person rendering
    or backfilling a theme): one publish_job run per auto-publishing theme and block of
    neighbouring images, tagged as the chain's, so composites held for review stay held.

    A render run publishes what it renders itself; its composites need nothing here."""
    selections: dict[str, bool] = {}

    def published_in_run(run_id: str) -> bool:
        if run_id not in selections:
            run = context.instance.get_run_by_id(run_id)
            selections[run_id] = run is None or (
                run.job_name == RENDER_JOB or SHOPIFY_MEDIA in (run.asset_selection or ())
            )
        return selections[run_id]

    by_theme: dict[str, set[str]] = {}
    for record in composites:
        if record.partition_key is None or published_in_run(record.run_id):
            continue
        image, theme = split_multi_key(record.partition_key)
        if theme in auto:
            by_theme.setdefault(theme, set()).add(image)
    if not by_theme:
        return []
    order = context.instance.get_dynamic_partitions("images")
    position = {key: i for i, key in enumerate(order)}
    tag = composites[-1].storage_id
    requests = []
    for theme in (t for t in themes if t in by_theme):
        known = [position[k] for k in by_theme[theme] if k in position]
        for lo, hi in _blocks(known):
            for start in range(lo, hi + 1, PUBLISH_BATCH):
                stop = min(hi, start + PUBLISH_BATCH - 1)
                first, last = (
                    str(multi_key(order[start], theme)),
                    str(multi_key(order[stop], theme)),
                )
                run_key = f"publish:{first}:{last}:{tag}"
                auto_tag = {PUBLISH_TAG: "auto"}
                requests.append(_range_request(run_key, PUBLISH_JOB, first, last, auto_tag))
    return requests


@dg.sensor(
    name="chain_sensor",
    jobs=[render_job, publish_job],
    # Every pass of the daemon's sensor loop (it passes every 5 s): the tick reads new
    # records only.
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs backgrounds, composite and shopify_media for every theme when an "
    "image's mask is materialised (composites of auto-publishing themes are published in "
    "that run), and publishes auto themes' composites a person rendered without publishing.",
)
def chain_sensor(
    context: dg.SensorEvaluationContext, themes: ThemeLibrary
) -> dg.SensorResult | dg.SkipReason:
    cursor = json.loads(context.cursor or "{}")
    theme_list = list(themes.all().values())
    names = [t.name for t in theme_list]
    auto = {t.name for t in theme_list if t.publish == "auto"}

    masks = _new_materializations(context, "mask", int(cursor.get("mask", 0)))
    composites = _new_materializations(context, "composite", int(cursor.get("composite", 0)))
    if not masks and not composites:
        return dg.SkipReason("no new masks or composites")
    if masks:
        cursor["mask"] = masks[-1].storage_id
    if composites:
        cursor["composite"] = composites[-1].storage_id
    requests = render_requests(context, masks, names) + publish_requests(
        context, composites, names, auto
    )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
