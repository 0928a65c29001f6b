"""Scale-out on Dagster's Celery executor: two worker processes on the local RabbitMQ run
the steps of imgpipe's runs, launched the way the daemon launches them (a process per run)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.instance.ref import InstanceRef

from imgpipe_assets.partitions import multi_key, range_tags
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.jobs import jobs_for_image
from imgpipe_resources.db.migrate import upgrade
from tests.helpers import ROOT, ingest, make_settings, models_dir

BIN = Path(sys.executable).parent
BROKER = os.environ.get("IMGPIPE_TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
REQUIRE = os.environ.get("IMGPIPE_REQUIRE_BROKER") == "1"


def _broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def celery_env(tmp_path: Path) -> dict[str, str]:
    if not _broker_up():
        if REQUIRE:
            pytest.fail("RabbitMQ is required but unreachable at 127.0.0.1:5672")
        pytest.skip("RabbitMQ unreachable at 127.0.0.1:5672")
    pytest.importorskip("dagster_celery")
    (tmp_path / "dagster").mkdir()
    # Create the instance's SQLite storage once, before two workers and two runs open it at
    # the same moment (each would otherwise stamp the schema's version concurrently).
    dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(tmp_path / "dagster"))).dispose()
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        "themes:\n"
        "  white: {background: {style: solid, colors: ['#ffffff']}, canvas: [512, 512]}\n"
        "  night: {background: {style: gradient, colors: ['#202030', '#000000']},"
        " canvas: [512, 512]}\n"
    )
    return {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "IMGPIPE_HOME": str(tmp_path / "home"),
        "IMGPIPE_MODELS_DIR": str(models_dir()),
        "IMGPIPE_THEMES": str(themes),
        "IMGPIPE_EXECUTOR": "celery",
        "IMGPIPE_CELERY_BROKER": BROKER,
        # A queue of this test's own: nothing else on the broker takes its tasks.
        "IMGPIPE_CELERY_QUEUE": f"imgpipe-test-{uuid.uuid4().hex[:8]}",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def workers(celery_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen]]:
    config = tmp_path / "celery.yaml"
    config.write_text((ROOT / "deploy" / "celery.yaml").read_text())
    procs = []
    for i in range(2):
        log = (tmp_path / f"worker{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dagster-celery"),
                    "worker",
                    "start",
                    "-A",
                    "dagster_celery.app",
                    "-y",
                    str(config),
                    "-q",
                    celery_env["IMGPIPE_CELERY_QUEUE"],
                    "-n",
                    f"{celery_env['IMGPIPE_CELERY_QUEUE']}-{i}",
                    "--",
                    "--concurrency=1",
                    "--pool=solo",
                ],
                env={**celery_env, "PATH": f"{BIN}{os.pathsep}{celery_env.get('PATH', '')}"},
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                start_new_session=True,  # the wrapper and its celery process stop together
            )
        )
    try:
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _launch(env: dict[str, str], job: str, first: str, last: str) -> subprocess.Popen:
    """A run in its own process, as the daemon's run launcher starts one."""
    return subprocess.Popen(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "imgpipe_assets.definitions",
            "-j",
            job,
            "--tags",
            json.dumps(range_tags(first, last)),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def _wait(procs: list[subprocess.Popen], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, out.decode()[-3000:]


def test_two_celery_workers_share_the_steps_of_concurrent_runs(
    celery_env: dict[str, str], workers: list[subprocess.Popen], sample_photos: dict
) -> None:
    if shutil.which("dagster-celery", path=str(BIN)) is None:
        pytest.skip("dagster-celery is not installed")
    settings = make_settings(
        Path(celery_env["IMGPIPE_HOME"]), themes_path=Path(celery_env["IMGPIPE_THEMES"])
    )
    upgrade(settings.database_url)
    keys = ingest(settings, [sample_photos["RING-0001"], sample_photos["WATCH-0002"]])
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(celery_env["DAGSTER_HOME"]))
    instance.add_dynamic_partitions("images", keys)

    _wait([_launch(celery_env, "mask_job", k, k) for k in keys])
    themes = ["white", "night"]  # the theme file's order
    _wait(
        [
            _launch(
                celery_env,
                "render_job",
                str(multi_key(k, themes[0])),
                str(multi_key(k, themes[-1])),
            )
            for k in keys
        ]
    )

    runs = instance.get_runs()
    assert len(runs) == 4 and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    run_pids, step_pids = set(), set()
    for run in runs:
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            if event.event_type == dg.DagsterEventType.RUN_START:
                run_pids.add(event.pid)
            if event.event_type == dg.DagsterEventType.STEP_START:
                step_pids.add(event.pid)
    # Steps ran in the workers, not in the processes that launched the runs, and both
    # workers took a share.
    assert step_pids and not step_pids & run_pids
    worker_pids = {
        int(p)
        for w in workers
        for p in subprocess.run(
            ["pgrep", "-P", str(w.pid)], capture_output=True, text=True
        ).stdout.split()
    } | {w.pid for w in workers}
    assert len(step_pids & worker_pids) >= 2, (step_pids, worker_pids)
    with session_scope(settings.database_url) as session:
        for key in keys:
            jobs = jobs_for_image(session, key)
            assert {j.theme for j in jobs} == {"white", "night"}
            assert all(j.composite_key for j in jobs)
            assert all((settings.home / str(j.composite_key)).is_file() for j in jobs)
