"""The four assets wired together, on a real (temporary) Dagster instance."""

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_assets.partitions import multi_key, range_tags
from imgpipe_assets.themes import load_themes
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.migrate import upgrade
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from tests.helpers import Chain, ingest, run_range


def _jobs(settings: Settings) -> dict[tuple[str, str], Job]:
    with session_scope(settings.database_url) as session:
        return {(j.sku, j.theme): j for j in session.scalars(select(Job))}


@pytest.fixture(params=["sqlite", "postgresql"])
def chain_settings(request: pytest.FixtureRequest, small_settings: Settings) -> Settings:
    """The small-theme settings with the jobs database on SQLite, then on PostgreSQL."""
    if request.param == "sqlite":
        return small_settings
    url = str(request.getfixturevalue("postgres_url"))
    upgrade(url)
    return Settings(**{**small_settings.__dict__, "database_url": url})


def test_one_image_through_materialize(chain_settings: Settings, sample_photos: dict) -> None:
    small_settings = chain_settings
    (key,) = ingest(small_settings, [sample_photos["RING-0001"]], "Test product")
    defs = build_definitions(small_settings)
    assets = defs.resolve_all_asset_specs()
    assert {a.key.to_user_string() for a in assets} == {
        "mask",
        "backgrounds",
        "composite",
        "shopify_media",
        "jobs_report",
    }
    resources = defs.resources
    all_assets = list(defs.assets or [])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        mask_def = next(a for a in all_assets if a.key.to_user_string() == "mask")
        result = dg.materialize(
            [mask_def], partition_key=key, instance=instance, resources=resources
        )
        assert result.success
        md = result.asset_materializations_for_node("mask")[0].metadata
        assert md["storage_key"].value.startswith("masks/")
        assert 0.02 < md["mask_coverage"].value < 0.6
        assert md["status"].value == "created"
        pk = multi_key(key, "white")
        result = dg.materialize(
            all_assets,
            selection=["backgrounds", "composite", "shopify_media"],
            partition_key=pk,
            instance=instance,
            resources=resources,
        )
        assert result.success
        comp = next(
            m.metadata
            for m in result.asset_materializations_for_node("render")
            if m.asset_key == dg.AssetKey("composite")
        )
        assert comp["storage_key"].value.endswith("/white.jpg")
        assert (small_settings.home / comp["storage_key"].value).is_file()
    job = _jobs(small_settings)[("RING-0001", "white")]
    assert job.status == "DONE"
    assert job.shopify_media_id and "dry-run" in job.shopify_media_id
    assert job.mask_key and job.background_key and job.composite_key


def test_batch_with_a_bad_photo_keeps_going_and_reruns_add_nothing(
    small_settings: Settings, sample_photos: dict, tmp_path: Path
) -> None:
    truncated = tmp_path / "BROKEN-1.jpg"
    data = sample_photos["WATCH-0002"].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    keys = ingest(
        small_settings,
        [sample_photos["RING-0001"], truncated, sample_photos["PENDANT-0003"]],
        "Test product",
    )
    defs = build_definitions(small_settings)
    themes = list(load_themes(small_settings.themes_path).values())
    with dg.instance_for_test() as instance:
        chain = Chain(defs, instance)
        runs = chain.settle()
        # One mask run for the intake batch, as the intake sensor requests it; then one
        # render run (which publishes) per block of neighbouring images that were cut out.
        assert [r.dagster_run.job_name for r in runs] == ["mask_job", "render_job", "render_job"]
        assert not runs[0].success and all(r.success for r in runs[1:])
        assert "TRUNCATED_IMAGE" in Chain.failed(runs)[0]
        done = instance.get_materialized_partitions(dg.AssetKey("mask"))
        assert done == {keys[0], keys[2]}
        outbox = sorted((small_settings.home / "outbox").rglob("*.json"))
        assert len(outbox) == 4  # two images x two auto themes; 'night' awaits review

        # A person re-runs the cut-outs; the chain renders and publishes again, adding nothing.
        assert not run_range(defs, instance, "mask_job", keys[0], keys[-1]).success
        again = chain.settle()
        assert [r.dagster_run.job_name for r in again] == ["render_job", "render_job"]
        assert all(r.success for r in again)
        assert sorted((small_settings.home / "outbox").rglob("*.json")) == outbox
        latest = instance.get_latest_materialization_event(dg.AssetKey("mask"))
        assert latest is not None

    jobs = _jobs(small_settings)
    assert {jobs[("BROKEN-1", t.name)].status for t in themes} == {"FAILED"}
    assert {jobs[("BROKEN-1", t.name)].error_code for t in themes} == {"TRUNCATED_IMAGE"}
    for sku in ("RING-0001", "PENDANT-0003"):
        assert jobs[(sku, "white")].status == "DONE"
        assert jobs[(sku, "marble")].status == "DONE"
        assert jobs[(sku, "night")].status == "AWAITING_REVIEW"
        assert jobs[(sku, "marble")].composite_key.endswith(".webp")
        assert jobs[(sku, "white")].attempts == 1  # the re-run counted, and re-used


def test_a_range_run_records_each_partitions_own_materialisation(
    small_settings: Settings, sample_photos: dict
) -> None:
    """One event shape for one partition or many: in a range run every partition gets one
    materialisation, with its own storage key and preview, and nothing else."""
    keys = ingest(small_settings, list(sample_photos.values()))
    defs = build_definitions(small_settings)
    names = list(load_themes(small_settings.themes_path))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        tags = range_tags(keys[0], keys[-1])
        assert defs.resolve_job_def("mask_job").execute_in_process(instance=instance, tags=tags)
        first, last = str(multi_key(keys[0], names[0])), str(multi_key(keys[-1], names[-1]))
        render = defs.resolve_job_def("render_job").execute_in_process(
            instance=instance, tags=range_tags(first, last)
        )
        assert render.success

        def records(asset: str) -> list[dg.EventLogRecord]:
            return list(instance.fetch_materializations(dg.AssetKey(asset), limit=1000).records)

        n, themed = len(keys), len(keys) * len(names)
        for asset, partitions in (("mask", n), ("composite", themed), ("backgrounds", themed)):
            mats = records(asset)
            assert sorted(str(r.partition_key) for r in mats) == sorted(
                set(str(r.partition_key) for r in mats)
            )
            assert len(mats) == partitions  # one each, no summary beside it
            for record in mats:
                md = record.asset_materialization.metadata  # type: ignore[union-attr]
                assert "storage_key" in md and "status" in md and "seconds" in md
        for record in records("composite"):
            md = record.asset_materialization.metadata  # type: ignore[union-attr]
            image, theme = str(record.partition_key).split("|")
            sku = image.split("~")[0]
            assert md["storage_key"].value.startswith(f"composites/{sku}/")
            assert f"/{theme}." in md["storage_key"].value and "preview" in md
        for record in records("mask"):
            md = record.asset_materialization.metadata  # type: ignore[union-attr]
            assert md["sku"].value == str(record.partition_key).split("~")[0]
        assert not list(instance.fetch_observations(dg.AssetKey("composite"), limit=10).records)


def test_two_photos_cut_out_at_once_give_the_same_cut_outs_as_one_at_a_time(
    tmp_path: Path, small_settings: Settings, sample_photos: dict
) -> None:
    """A mask run cuts out IMGPIPE_CUTOUT_WORKERS photos at once: each partition still gets
    one materialisation and its jobs rows, and every stored cut-out is byte for byte the one
    a single worker makes."""
    cut_outs = {}
    for workers in (1, 2):
        home = tmp_path / f"workers-{workers}"
        settings = Settings(
            **{
                **small_settings.__dict__,
                "home": home,
                "database_url": f"sqlite:///{home / 'imgpipe.db'}",
                "cutout_workers": workers,
            }
        )
        home.mkdir()
        upgrade(settings.database_url)
        keys = ingest(settings, list(sample_photos.values()))
        defs = build_definitions(settings)
        assert defs.resources["segmenter"].concurrency == workers
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", keys)
            assert run_range(defs, instance, "mask_job", keys[0], keys[-1]).success
            mats = instance.fetch_materializations(dg.AssetKey("mask"), limit=100).records
            assert sorted(str(r.partition_key) for r in mats) == sorted(keys)
        assert {j.status for j in _jobs(settings).values()} == {"SEGMENTING"}
        cut_outs[workers] = {p.name: p.read_bytes() for p in (home / "masks").iterdir()}
    assert len(cut_outs[2]) == len(sample_photos) and cut_outs[2] == cut_outs[1]


def test_a_doubtful_cut_out_is_held_for_review_in_every_theme(
    chain_settings: Settings, tmp_path: Path
) -> None:
    from imgpipe_assets.imaging.samples import render_sample

    small = tmp_path / "RING-SMALL.jpg"
    small.write_bytes(render_sample("RING-0001", size=450))  # borderline resolution
    ingest(chain_settings, [small])
    defs = build_definitions(chain_settings)
    themes = list(load_themes(chain_settings.themes_path).values())
    with dg.instance_for_test() as instance:
        runs = Chain(defs, instance).settle()
        assert all(r.success for r in runs), Chain.failed(runs)
    jobs = _jobs(chain_settings)
    assert {t.name for t in themes} == {theme for _sku, theme in jobs}
    for job in jobs.values():
        # Rendered, not published: auto themes wait for a person like review themes.
        assert job.status == "AWAITING_REVIEW" and job.composite_key
        assert job.review_reason and "resolution" in job.review_reason
        assert job.shopify_media_id is None
    assert not list((chain_settings.home / "outbox").rglob("*.json"))
