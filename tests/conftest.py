"""Shared fixtures: settings in a temporary home, SQLite and PostgreSQL databases, samples."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from imgpipe_resources.db.engine import get_engine
from imgpipe_resources.db.migrate import upgrade
from imgpipe_resources.settings import NAMES, Settings
from tests.helpers import SMALL_THEMES, make_settings, models_dir

PG_URL = os.environ.get(
    "IMGPIPE_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("IMGPIPE_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's environment stays out of the tests: every imgpipe setting is unset
    unless a test sets it itself."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


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


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    """Settings with three small themes (fast renders), database at head."""
    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    s = make_settings(tmp_path / "home", themes_path=themes)
    upgrade(s.database_url)
    return s


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Loud, not silent: what did not run because the shared files are missing."""
    from tests.helpers import SHARED

    if SHARED.is_dir():
        return
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if str(SHARED) in str(r.longrepr)
    ]
    terminalreporter.write_sep(
        "!",
        f"{SHARED} is missing: {len(skipped)} tests skipped, among them the validation of "
        "every Shopify GraphQL document against the Admin schema (set IMGPIPE_SHARED_DIR)",
        red=True,
        bold=True,
    )
