"""Running the chain in this process, on a real Dagster instance: what `imgpipe demo` does.

The same jobs the sensors launch under the daemon run here one after another, so the demo's
runs, materialisations and jobs rows are the ones the UI shows afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from imgpipe_assets.assets.auto_publish import AUTO_PUBLISH_JOB
from imgpipe_assets.instance_storage import event_log_config
from imgpipe_assets.jobs import MASK_JOB, RENDER_JOB
from imgpipe_assets.partitions import multi_key, range_tags
from imgpipe_assets.themes import Theme

LOCAL_INSTANCE_YAML = """\
# imgpipe on one machine (written by imgpipe; deploy/dagster.yaml is the production one).
telemetry:
  enabled: false
# The cut-out model and the renderer each use every core: one run of each at a time keeps
# the machine busy without thrashing it; a big intake queues instead of starting at once.
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - {key: imgpipe/stage, value: mask, limit: 1}
      - {key: imgpipe/stage, value: render, limit: 1}
# The daemon looks at the run queue every second (Dagster's default is every 5 s): a batch's
# render run, and the next batch's cut-outs, start as soon as the run before them ends.
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""
EVENT_LOG_COMMENT = """\
# Dagster's SQLite event log, its connections reused (imgpipe_assets/instance_storage.py):
# the same files, less than half the CPU per event.
"""


def write_local_instance_config(dagster_home: Path) -> Path:
    """The embedded default's instance settings, unless the user has their own."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        home = str(dagster_home.resolve())
        config.write_text(LOCAL_INSTANCE_YAML + EVENT_LOG_COMMENT + event_log_config(home))
    return config


def local_instance(dagster_home: Path) -> dg.DagsterInstance:
    """A persistent instance in ``dagster_home`` (the one `dagster dev` uses with DAGSTER_HOME)."""
    write_local_instance_config(dagster_home)
    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home)))


@dataclass
class ChainOutcome:
    image: str
    failed_runs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed_runs


def _run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job: str,
    tags: dict[str, str] | None,
    partition_key: str | None,
    outcome: ChainOutcome,
    op_config: dict[str, Any] | None = None,
) -> bool:
    run_config: dict[str, Any] = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    if op_config:
        run_config["ops"] = op_config
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=tags or {},
        raise_on_error=False,
        run_config=run_config,
    )
    if not result.success:
        outcome.failed_runs.append(result.run_id)
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data:
                outcome.errors.append(
                    event.step_failure_data.error.message.strip().splitlines()[0]
                    if event.step_failure_data.error
                    else "step failed"
                )
    return result.success


def run_chain(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    image_keys: Sequence[str],
    themes: Sequence[Theme],
    on_step: Callable[[str, str], None] | None = None,
) -> list[ChainOutcome]:
    """mask -> backgrounds + composite (every theme) -> shopify_media (auto themes), per image.

    ``on_step(image, stage)`` is called as each stage finishes.
    """
    names = [t.name for t in themes]
    auto = [t.name for t in themes if t.publish == "auto"]
    missing = [k for k in image_keys if not instance.has_dynamic_partition("images", k)]
    if missing:
        instance.add_dynamic_partitions("images", missing)
    outcomes = []
    for key in image_keys:
        outcome = ChainOutcome(key)
        outcomes.append(outcome)
        done = on_step or (lambda _key, _stage: None)
        if not _run(defs, instance, MASK_JOB, None, key, outcome):
            continue
        done(key, "mask")
        first, last = str(multi_key(key, names[0])), str(multi_key(key, names[-1]))
        if not _run(defs, instance, RENDER_JOB, range_tags(first, last), None, outcome):
            continue
        done(key, "composites")
        if auto:
            keys = [str(multi_key(key, theme)) for theme in auto]
            config = {"auto_publish": {"config": {"partitions": keys}}}
            _run(defs, instance, AUTO_PUBLISH_JOB, None, None, outcome, config)
        done(key, "publish")
    return outcomes
