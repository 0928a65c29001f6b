"""`dagster dev` (webserver + daemon + code server) on a temporary instance, for benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def bench_env(tmp: Path, **extra: str) -> dict[str, str]:
    """IMGPIPE_HOME and a fresh DAGSTER_HOME under ``tmp`` configured as the embedded
    default's, the jobs database migrated."""
    env = {
        **os.environ,
        "IMGPIPE_HOME": str(tmp / "home"),
        "DAGSTER_HOME": str(tmp / "dagster"),
        **extra,
    }
    from imgpipe_assets.local_run import write_local_instance_config

    write_local_instance_config(tmp / "dagster")  # what `imgpipe demo` sets up
    subprocess.run([BIN / "imgpipe", "db", "upgrade"], env=env, check=True, capture_output=True)
    return env


@contextmanager
def dagster_dev(env: dict[str, str], tmp: Path, port: int, settle_s: float = 20) -> Iterator[None]:
    """Run `dagster dev` until the block ends; ``settle_s`` lets its sensors start ticking."""
    log = (tmp / "dev.log").open("w")
    dev = subprocess.Popen(
        [BIN / "dagster", "dev", "-w", str(ROOT / "workspace.yaml"), "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
        start_new_session=True,
    )
    try:
        time.sleep(settle_s)
        yield
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a run still shutting down: the figures are taken
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
        log.close()
