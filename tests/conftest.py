"""Shared fixtures: settings in a temporary home, SQLite and PostgreSQL databases, samples."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imgpipe_resources.db.engine import get_engine, upgrade
from imgpipe_resources.settings import NAMES, Settings, default_models_dir

PG_URL = os.environ.get(
    "IMGPIPE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("IMGPIPE_REQUIRE_POSTGRES") == "1"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


# Where the weights are is the one setting the tests take from the machine.
MODELS_DIR = Path(os.environ.get("IMGPIPE_MODELS_DIR") or default_models_dir())


def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's environment stays out of the tests: every imgpipe setting is unset
    unless a test sets it itself."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = make_settings(tmp_path / "home")
    upgrade(s.database_url)
    return s


def _pg_available() -> bool:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    if not _pg_available():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but unreachable at {PG_URL}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    return PG_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"imgpipe_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from imgpipe_assets.imaging.samples import PRODUCTS, render_sample

    folder = tmp_path_factory.mktemp("samples")
    out = {}
    for sku in PRODUCTS:
        path = folder / f"{sku}.jpg"
        path.write_bytes(render_sample(sku, size=600))
        out[sku] = path
    return out


@pytest.fixture
def needs_model() -> Path:
    path = models_dir() / "u2netp.onnx"
    if not path.is_file():
        pytest.skip("u2netp weights missing: run `imgpipe models fetch`")
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    shadow: {contact_opacity: 0.3, drop_opacity: 0.2}
    output: {format: webp, quality: 80}
    publish: auto
  night:
    background: {style: gradient, colors: ["#2b3040", "#0e1016"], seed: 3}
    canvas: [192, 256]
    output: {format: png}
    publish: review
"""


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    """Settings with three small themes (fast renders), database at head."""
    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    s = make_settings(tmp_path / "home", themes_path=themes)
    upgrade(s.database_url)
    return s


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
