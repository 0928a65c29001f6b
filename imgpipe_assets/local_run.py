"""imgpipe on one machine: the embedded instance's settings, and its Dagster daemon.

`imgpipe demo` records its photos as any intake does and lets the daemon run the code
location's sensors, which launch the same runs as in production; the demo only waits and
reports. Its runs, materialisations, sensor cursors and jobs rows are the ones `dagster dev`
shows afterwards, and a daemon started later has nothing left to do for them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.instance.ref import InstanceRef

from imgpipe_assets.errors import DaemonStopped
from imgpipe_assets.instance_storage import event_log_config
from imgpipe_assets.jobs import IN_FLIGHT
from imgpipe_resources.settings import child_environment

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


WORKSPACE_YAML = """\
# The code location as workspace.yaml names it (written by imgpipe): the daemon `imgpipe demo`
# starts keeps its sensors' cursors under the same names `dagster dev -w workspace.yaml` uses.
load_from:
  - python_module:
      module_name: imgpipe_assets.definitions
      location_name: imgpipe
"""
HEARTBEAT_FRESH_S = 60


def daemon_alive(instance: dg.DagsterInstance) -> bool:
    """Whether a Dagster daemon is serving this instance (its sensor heartbeat is fresh)."""
    try:
        beats = instance.get_daemon_heartbeats()
    except Exception:  # an instance without daemon storage has no daemon
        return False
    now = time.time()
    return any(now - beat.timestamp < HEARTBEAT_FRESH_S for beat in beats.values())


def fail_stale_runs(instance: dg.DagsterInstance) -> list[str]:
    """Runs left starting or started by a process that is gone (a killed demo or daemon),
    marked failed; called only when no daemon serves the instance. Queued runs are left:
    the next daemon starts them."""
    stale = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    )
    for run in stale:
        instance.report_run_failed(run, "its process ended without finishing the run")
    return [run.run_id for run in stale]


class Daemon:
    """The Dagster daemon of a local instance, for as long as the ``with`` block: the one
    already serving it (``dagster dev`` in another terminal) or one started here, which
    runs the code location's own sensors and launches their runs as in production."""

    def __init__(self, dagster_home: Path) -> None:
        self.home = dagster_home
        self.log = dagster_home / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        instance = local_instance(self.home)
        if daemon_alive(instance):
            return self
        fail_stale_runs(instance)
        workspace = self.home / "workspace.yaml"
        workspace.write_text(WORKSPACE_YAML)
        env = child_environment(DAGSTER_HOME=str(self.home.resolve()))
        daemon = shutil.which("dagster-daemon", path=str(Path(sys.executable).parent))
        command = [daemon or "dagster-daemon", "run", "-w", str(workspace)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def check(self) -> None:
        """Raise with the log's last lines if the daemon started here has stopped."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise DaemonStopped(
                f"the Dagster daemon stopped (exit {self.process.returncode}); "
                f"{self.log}: " + " | ".join(tail)
            )

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Gone, so no longer serving: the next demo starts its own at once.
        local_instance(self.home).wipe_daemon_heartbeats()


def run_in_flight(instance: dg.DagsterInstance) -> bool:
    """Whether any run of the instance is queued, starting or running."""
    return bool(instance.get_run_records(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1))
