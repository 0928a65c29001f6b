"""What the tests share besides fixtures: settings, small themes, ingesting photos, running
partition ranges, and the chain's own sensors ticked in the test's process."""

from __future__ import annotations

import os
import socket
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import dagster as dg
import httpx
import pytest

from imgpipe_resources.settings import Settings, default_models_dir

# The checkout: tests read its files (.env.example, deploy/, workspace.yaml, the sources).
ROOT = Path(__file__).resolve().parent.parent
# The evaluation sets and the Shopify Admin schema: ../shared beside the checkout, or
# IMGPIPE_SHARED_DIR. Without them the tests that need them skip, and say so at the end.
SHARED = Path(os.environ.get("IMGPIPE_SHARED_DIR") or ROOT.parent / "shared")

# Where the weights are is the one setting the tests take from the machine.
MODELS_DIR = Path(os.environ.get("IMGPIPE_MODELS_DIR") or default_models_dir())


def models_dir() -> Path:
    return MODELS_DIR


JobStates = dict[tuple[str, str], str]  # (sku, theme) -> status


T = TypeVar("T")


def wait_until(read: Callable[[], T], settled: Callable[[T], bool], timeout: float) -> T:
    """``read()`` every 2 s until ``settled`` holds for what it returns or ``timeout`` s have
    passed: the last reading either way, for the test to assert on (and show when it fails)."""
    deadline = time.time() + timeout
    while True:
        value = read()
        if settled(value) or time.time() >= deadline:
            return value
        time.sleep(2)


def wait_for_jobs(
    database_url: str, settled: Callable[[JobStates], bool], timeout: float
) -> JobStates:
    """The jobs table's states, as ``wait_until`` reads them."""
    from sqlalchemy import select

    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.models import Job

    def states() -> JobStates:
        with session_scope(database_url) as session:
            return {(j.sku, j.theme): j.status for j in session.scalars(select(Job))}

    return wait_until(states, settled, timeout)


def make_settings(home: Path, database_url: str | None = None, **overrides: object) -> Settings:
    env = {
        "IMGPIPE_HOME": str(home),
        "IMGPIPE_MODELS_DIR": str(models_dir()),
    }
    if database_url:
        env["IMGPIPE_DATABASE_URL"] = database_url
    settings = Settings.from_env(env)
    if overrides:
        settings = Settings(**{**settings.__dict__, **overrides})  # type: ignore[arg-type]
    return settings


def reread(settings: Settings, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """``settings`` with more variables set, as a process started with them would read
    them; they stay in the environment for the ``dagster.EnvVar`` secrets they name."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    base = {
        "IMGPIPE_HOME": str(settings.home),
        "IMGPIPE_DATABASE_URL": settings.database_url,
        "IMGPIPE_THEMES": str(settings.themes_path),
        "IMGPIPE_MODELS_DIR": str(settings.models_dir),
        "MAX_IMAGES_PER_SKU": str(settings.max_images_per_sku),
    }
    return Settings.from_env({**base, **env})


SMALL_THEMES = """
themes:
  white:
    background: {style: sweep, colors: ["#ffffff", "#e6e7ea"], seed: 1}
    canvas: [256, 256]
    padding: 0.1
    align: bottom
    output: {format: jpeg, quality: 85}
    alt: "{title} on white"
    publish: auto
  marble:
    background: {style: texture, colors: ["#f4efe8", "#cbbfae"], seed: 2}
    canvas: [256, 192]
    shadow: {contact: {strength: 0.3}, drop: {strength: 0.2}}
    output: {format: webp, quality: 80}
    publish: auto
  night:
    background: {style: gradient, colors: ["#2b3040", "#0e1016"], seed: 3}
    canvas: [192, 256]
    output: {format: png}
    publish: review
"""


def ingest(settings: Settings, paths: list[Path], title: str | None = None) -> list[str]:
    """Record photos as `imgpipe ingest` does; return their partition keys (all accepted)."""
    from imgpipe_assets.ingest import ingest_file
    from imgpipe_resources.storage import LocalObjectStore

    store = LocalObjectStore(root=str(settings.home))
    keys = []
    for path in paths:
        result = ingest_file(settings, store, path, title=title)
        assert result.partition_key, result
        keys.append(result.partition_key)
    return keys


def run_range(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, first: str, last: str
) -> dg.ExecuteInProcessResult:
    """One run of ``job`` over the partitions first..last, as the sensors request it; a
    failed step is returned in the result, not raised."""
    from imgpipe_assets.partitions import range_tags

    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), raise_on_error=False
    )


class Chain:
    """The code location's own sensors, ticked in this process as the daemon ticks them
    (their cursors kept between ticks), and the runs they request executed on the test's
    instance with the tags the daemon gives them: the chain production runs, without a
    daemon's start-up and polling."""

    SENSORS = ("intake_sensor", "chain_sensor")

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursors: dict[str, str | None] = {}
        self.runs: list[dg.ExecuteInProcessResult] = []

    def tick(self, name: str) -> list[dg.ExecuteInProcessResult]:
        """One tick of sensor ``name``; the runs it requested, executed."""
        sensor = self.defs.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors.get(name),
            definitions=self.defs,
            resources=self.defs.resources,
        ) as context:
            data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        for request in data.dynamic_partitions_requests or []:
            assert isinstance(request, dg.AddDynamicPartitionsRequest)
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        results = []
        for run in data.run_requests or []:
            tags = {**run.tags, "dagster/sensor_name": name}
            if run.run_key:
                tags["dagster/run_key"] = run.run_key
            job = self.defs.resolve_job_def(str(run.job_name))
            results.append(
                job.execute_in_process(
                    instance=self.instance,
                    partition_key=run.partition_key,
                    tags=tags,
                    run_config=run.run_config or None,
                    raise_on_error=False,
                )
            )
        self.runs.extend(results)
        return results

    def settle(self, rounds: int = 10) -> list[dg.ExecuteInProcessResult]:
        """Tick the sensors until none requests a run; every run that was made."""
        made: list[dg.ExecuteInProcessResult] = []
        for _ in range(rounds):
            ran = [r for name in self.SENSORS for r in self.tick(name)]
            if not ran:
                return made
            made.extend(ran)
        raise AssertionError(f"the chain still requested runs after {rounds} rounds")

    @staticmethod
    def failed(runs: list[dg.ExecuteInProcessResult]) -> list[str]:
        """The first line of each failed step's error in ``runs``."""
        errors = []
        for result in runs:
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data:
                    error = event.step_failure_data.error
                    errors.append(error.message.strip().splitlines()[0] if error else "failed")
        return errors


def free_port() -> int:
    """A TCP port nobody listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(url: str, query: str) -> dict:
    """One query to a Dagster webserver's GraphQL endpoint; its data."""
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    return dict(response.json()["data"])


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height but carries almost no data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
