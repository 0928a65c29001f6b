"""`dagster dev` (webserver + daemon + code server) on a temporary instance, for benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


LOOKS = ("studio-white", "marble-warm", "midnight-gradient")  # what every figure compares


def shipped_looks(target: Path, publish: str | None = None) -> Path:
    """The shipped theme file's three looks every figure since the start was measured on
    (``bench/channels.py`` measures the presets; the other looks are left out)."""
    import yaml

    doc = yaml.safe_load((ROOT / "imgpipe_assets" / "themes.yaml").read_text())
    doc["themes"] = {k: v for k, v in doc["themes"].items() if k in LOOKS}
    for theme in doc["themes"].values():
        if publish:
            theme["publish"] = publish
    target.write_text(yaml.safe_dump(doc))
    return target


TICK = os.sysconf("SC_CLK_TCK")
ROLES = (  # how each long-lived process of `dagster dev` is told apart by its command line
    ("-m dagster_webserver", "webserver"),
    ("-m dagster._daemon", "daemon"),
    ("code-server start", "code server proxy"),
    ("-m dagster api grpc", "code server"),
)


@dataclass
class DevServer:
    pid: int

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far, by role: each long-lived process's own CPU, and under
        "runs" the run workers' (each exits when its run ends, and the kernel adds its CPU to
        the code server that launched and reaped it; a run still going counts as its own)."""
        procs: dict[int, tuple[int, str, float, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            ppid, ut, st, cut, cst = int(fields[1]), *map(int, fields[11:15])
            procs[int(entry.name)] = (ppid, cmd, (ut + st) / TICK, (cut + cst) / TICK)
        tree, todo = set(), [self.pid]
        while todo:
            pid = todo.pop()
            tree.add(pid)
            todo += [child for child, info in procs.items() if info[0] == pid]
        totals: dict[str, float] = {}
        for pid in tree:
            _, cmd, own, reaped = procs[pid]
            role = next((name for key, name in ROLES if key in cmd), "")
            role = role or ("runs" if "execute_run" in cmd else "dagster dev")
            totals[role] = totals.get(role, 0.0) + own
            reaper = "runs" if role == "code server" else role
            totals[reaper] = totals.get(reaper, 0.0) + reaped
        return totals


@contextmanager
def dagster_dev(
    env: dict[str, str], tmp: Path, port: int, settle_s: float = 20
) -> Iterator[DevServer]:
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
        yield DevServer(dev.pid)
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a run still shutting down: the figures are taken
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait(timeout=30)
        log.close()
