"""The code location loads, and shows the four assets with their partitions."""

from pathlib import Path

import dagster as dg
import pytest

from imgpipe_assets.definitions import build_definitions, defs
from imgpipe_assets.errors import InvalidThemeFile
from imgpipe_assets.themes import load_themes
from imgpipe_resources.settings import Settings


def test_definitions_load_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMGPIPE_HOME", str(tmp_path))
    loaded = defs()
    specs = {s.key.to_user_string(): s for s in loaded.resolve_all_asset_specs()}
    assert set(specs) == {"mask", "backgrounds", "composite", "shopify_media", "jobs_report"}
    assert isinstance(specs["mask"].partitions_def, dg.DynamicPartitionsDefinition)
    multi = specs["composite"].partitions_def
    assert isinstance(multi, dg.MultiPartitionsDefinition)
    assert {d.name for d in multi.partitions_defs} == {"image", "theme"}
    themes = multi.get_partitions_def_for_dimension("theme").get_partition_keys()
    assert len(themes) >= 3
    assert all(specs[k].description for k in specs)
    assert {s.name for s in loaded.sensors or []} == {
        "intake_sensor",
        "chain_sensor",
        "jms_poll_sensor",
        "failure_sensor",
        "reconcile_sensor",
    }


def test_shipped_themes_are_valid() -> None:
    themes = load_themes(Settings.from_env({}).themes_path)
    assert len(themes) >= 3
    assert {t.output_format for t in themes.values()} <= {"jpeg", "webp", "png"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("themes: {}", "at least one theme"),
        ("themes: {Bad Name: {}}", "names use"),
        ("themes: {a: {background: {style: plaid}}}", "background.style"),
        ("themes: {a: {canvas: [10, 10]}}", "canvas"),
        ("themes: {a: {output: {format: gif}}}", "output.format"),
        ("themes: {a: {shadow: {blurriness: 2}}}", "shadow"),
        ("themes: [", "not valid YAML"),
    ],
)
def test_theme_file_errors_name_the_field(tmp_path: Path, doc: str, message: str) -> None:
    path = tmp_path / "themes.yaml"
    path.write_text(doc)
    with pytest.raises(InvalidThemeFile, match=message):
        load_themes(path)


def test_a_theme_added_to_the_file_becomes_a_partition(tmp_path: Path) -> None:
    from tests.helpers import SMALL_THEMES, make_settings

    path = tmp_path / "themes.yaml"
    path.write_text(SMALL_THEMES + "  gold:\n    background: {style: solid, colors: ['#c9a227']}\n")
    built = build_definitions(make_settings(tmp_path / "h", themes_path=path))
    spec = next(s for s in built.resolve_all_asset_specs() if s.key.to_user_string() == "composite")
    assert isinstance(spec.partitions_def, dg.MultiPartitionsDefinition)
    theme_dim = spec.partitions_def.get_partitions_def_for_dimension("theme")
    assert theme_dim.get_partition_keys() == ["white", "marble", "night", "gold"]


def test_jobs_report_puts_the_jobs_table_in_numbers(small_settings: Settings) -> None:
    from imgpipe_assets.assets.report import jobs_report
    from imgpipe_resources.database import JobsDatabase
    from imgpipe_resources.db.engine import session_scope
    from imgpipe_resources.db.jobs import ImageRef, ensure_jobs, fail

    with session_scope(small_settings.database_url) as session:
        ref = ImageRef("R-1~" + "a" * 12, "R-1", "a" * 64, None, None)
        first, *_ = ensure_jobs(session, ref, ["white", "marble"])
        fail(first, "TRUNCATED_IMAGE", "image data is incomplete")
    result = dg.materialize(
        [jobs_report], resources={"db": JobsDatabase(url=small_settings.database_url)}
    )
    md = result.asset_materializations_for_node("jobs_report")[0].metadata
    assert md["jobs_total"].value == 2
    assert md["jobs_failed"].value == 1 and md["jobs_done"].value == 0
    assert md["failures_by_code"].value == {"TRUNCATED_IMAGE": 1}
    assert "TRUNCATED_IMAGE" in md["failures"].value
