"""Cut-outs on Replicate: the real `replicate` client against a local server speaking its API."""

from __future__ import annotations

import hashlib

import dagster as dg
import pytest
from sqlalchemy import func, select

from imgpipe_assets.definitions import build_definitions
from imgpipe_assets.errors import PredictionFailed
from imgpipe_assets.ingest import ingest_file
from imgpipe_assets.partitions import range_tags
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job, Prediction
from imgpipe_resources.db.predictions import Ledger, Work
from imgpipe_resources.fakes.replicate_server import FakeReplicate, Faults
from imgpipe_resources.replicate_models import ReplicateModels
from imgpipe_resources.segmentation import CutoutRequest, ReplicateSegmenter
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from tests.helpers import reread, run_range

MODEL = "851-labs/background-remover:" + "a0" * 32


def models(fake: FakeReplicate, **kw: object) -> ReplicateModels:
    params: dict = {
        "api_token": "r8_test",
        "base_url": fake.url,
        "poll_interval_s": 0.05,
        "backoff_s": 0.05,
        "wait_s": 1,
        "price_per_second_usd": 0.001,
    }
    params.update(kw)
    return ReplicateModels(**params)


def request(settings: Settings, data: bytes, sku: str = "SKU-1") -> CutoutRequest:
    return CutoutRequest(sku, hashlib.sha256(data).hexdigest(), None, Ledger(settings.database_url))


def predictions(settings: Settings) -> list[Prediction]:
    with session_scope(settings.database_url) as session:
        return list(session.scalars(select(Prediction).order_by(Prediction.created_at)))


def test_cut_out_through_the_real_client(small_settings: Settings, sample_photos: dict) -> None:
    data = sample_photos["WATCH-0002"].read_bytes()
    with FakeReplicate(latency_s=0.3) as fake:
        seg = ReplicateSegmenter(replicate=models(fake), model_ref=MODEL)
        cut = seg.cut_out(data, request(small_settings, data))
    assert (cut.width, cut.height) == (600, 600)
    # A studio shot: the paid matte went through the backdrop key.
    assert 0.05 < cut.coverage < 0.6 and cut.model == f"{MODEL}+backdrop-key"
    (row,) = predictions(small_settings)
    assert (row.id, row.status, row.stage) == (cut.prediction_id, "succeeded", "mask")
    assert row.predict_time_s and row.predict_time_s >= 0.3
    assert float(row.cost_usd) == pytest.approx(row.predict_time_s * 0.001, abs=1e-6)
    assert cut.cost_usd == pytest.approx(float(row.cost_usd), abs=1e-6)


def test_a_model_that_returns_no_transparency_is_named(
    small_settings: Settings, sample_photos: dict
) -> None:
    data = sample_photos["WATCH-0002"].read_bytes()
    with FakeReplicate(latency_s=0.05, faults=Faults(opaque=True)) as fake:
        seg = ReplicateSegmenter(replicate=models(fake), model_ref=MODEL)
        with pytest.raises(PredictionFailed, match="returned no transparency") as caught:
            seg.cut_out(data, request(small_settings, data))
    assert "cut off" not in str(caught.value)
    assert caught.value.code == "REPLICATE_FAILED" and caught.value.cost_usd > 0


def test_an_unfinished_prediction_is_resumed_not_paid_again(
    small_settings: Settings, sample_photos: dict
) -> None:
    """A run crashed after creating a prediction: the re-run waits on the same one."""
    data = sample_photos["RING-0001"].read_bytes()
    with FakeReplicate(latency_s=1.0) as fake:
        m = models(fake, wait_s=1)
        req = request(small_settings, data)
        work = Work(key=f"mask:{req.sha256}:{MODEL}", stage="mask", model=MODEL)
        import base64

        uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        started = m.client().predictions.create(version=MODEL.split(":")[1], input={"image": uri})
        req.ledger.started(work, started.id, started.status)  # ...and then the run died
        cut = ReplicateSegmenter(replicate=m, model_ref=MODEL).cut_out(data, req)
        assert cut.prediction_id == started.id
        assert sum(fake.stats.creates.values()) == 1
        # Once succeeded, its output is collected again rather than paid for again.
        again = ReplicateSegmenter(replicate=m, model_ref=MODEL).cut_out(data, req)
        assert again.prediction_id == started.id and again.cost_usd == 0
        assert sum(fake.stats.creates.values()) == 1


def test_an_earlier_prediction_replicate_forgot_is_paid_again(
    small_settings: Settings, sample_photos: dict
) -> None:
    data = sample_photos["RING-0001"].read_bytes()
    with FakeReplicate(latency_s=0.1) as fake:
        req = request(small_settings, data)
        work = Work(key=f"mask:{req.sha256}:{MODEL}", stage="mask", model=MODEL)
        req.ledger.started(work, "expired0000000000000", "processing")  # unknown: 404
        cut = ReplicateSegmenter(replicate=models(fake), model_ref=MODEL).cut_out(data, req)
        assert cut.prediction_id != "expired0000000000000"
        assert sum(fake.stats.creates.values()) == 1


def test_an_unreadable_earlier_prediction_is_not_paid_again(
    small_settings: Settings, sample_photos: dict
) -> None:
    """A 500 on reading an earlier prediction may hide a success: retry later, pay nothing."""
    from imgpipe_resources.replicate_models import ReplicateUnavailable

    data = sample_photos["RING-0001"].read_bytes()
    with FakeReplicate(latency_s=0.1) as fake:
        m = models(fake)
        req = request(small_settings, data)
        first = ReplicateSegmenter(replicate=m, model_ref=MODEL).cut_out(data, req)
        fake.faults.read_error, fake.faults.read_error_status = 1.0, 500
        with pytest.raises(ReplicateUnavailable, match=first.prediction_id or "?"):
            ReplicateSegmenter(replicate=m, model_ref=MODEL).cut_out(data, req)
        assert sum(fake.stats.creates.values()) == 1


def test_timeouts_cancel_the_prediction(small_settings: Settings, sample_photos: dict) -> None:
    from imgpipe_resources.replicate_models import PredictionTimeout

    data = sample_photos["RING-0001"].read_bytes()
    with FakeReplicate(latency_s=5.0) as fake:
        seg = ReplicateSegmenter(replicate=models(fake, timeout_s=0.5, wait_s=1), model_ref=MODEL)
        with pytest.raises(PredictionTimeout, match="cancelled"):
            seg.cut_out(data, request(small_settings, data))
        assert fake.stats.cancels == 1
    assert [p.status for p in predictions(small_settings)] == ["canceled"]


def test_throttled_creation_is_retried_after_retry_after(
    small_settings: Settings, sample_photos: dict
) -> None:
    data = sample_photos["PENDANT-0003"].read_bytes()
    with FakeReplicate(latency_s=0.1, faults=Faults(throttle=0.6, retry_after="0", seed=3)) as fake:
        seg = ReplicateSegmenter(replicate=models(fake, create_attempts=20), model_ref=MODEL)
        cut = seg.cut_out(data, request(small_settings, data))
        assert fake.stats.throttled > 0
        assert sum(fake.stats.creates.values()) == 1
    assert cut.prediction_id


def test_refusals_are_named_errors(small_settings: Settings, sample_photos: dict) -> None:
    from imgpipe_resources.replicate_models import PredictionFailed

    data = sample_photos["PENDANT-0003"].read_bytes()
    with FakeReplicate(latency_s=0.1) as fake:
        seg = ReplicateSegmenter(replicate=models(fake, api_token=None), model_ref=MODEL)
        with pytest.raises(PredictionFailed, match="401"):
            seg.cut_out(data, request(small_settings, data))


def _chain_env(
    settings: Settings, fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> Settings:
    """``settings`` with cut-outs on the fake Replicate."""
    return reread(
        settings,
        monkeypatch,
        IMGPIPE_SEGMENTER="replicate",
        REPLICATE_API_TOKEN="r8_test",
        REPLICATE_BASE_URL=fake.url,
        REPLICATE_PRICE_PER_SECOND="0.001",
        **extra,
    )


def _ingest_many(settings: Settings, sample_photos: dict, n: int) -> list[str]:
    from imgpipe_assets.imaging.samples import render_sample

    store = LocalObjectStore(root=str(settings.home))
    folder = settings.home.parent / "many"
    folder.mkdir(exist_ok=True)
    keys = []
    skus = list(sample_photos)
    for i in range(n):
        path = folder / f"ITEM-{i:03d}.jpg"
        path.write_bytes(render_sample(skus[i % 3], size=320, seed=i))
        result = ingest_file(settings, store, path)
        assert result.partition_key
        keys.append(result.partition_key)
    return keys


def _fast_models(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> None:
    # The mask asset builds its provider from the environment; keep polling and backoff short.
    original = ReplicateModels.__init__
    defaults = {"poll_interval_s": 0.05, "backoff_s": 0.05, "wait_s": 1, **overrides}

    def patched(self: ReplicateModels, **data: object) -> None:
        original(self, **{**defaults, **data})

    monkeypatch.setattr(ReplicateModels, "__init__", patched)


def test_every_image_finishes_under_injected_faults_and_pays_once(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failed prediction is replaced (3 predictions per piece of work): at most 2 failures
    # per photo, so every photo must finish, whatever order the threads draw the faults in.
    faults = Faults(
        throttle=0.2,
        create_error=0.2,
        read_error=0.2,
        failed=0.3,
        failures_per_input=2,
        retry_after="0",
        seed=7,
    )
    with FakeReplicate(latency_s=1.3, faults=faults) as fake:  # outlasts Prefer: wait=1
        chained = _chain_env(small_settings, fake, monkeypatch, REPLICATE_CONCURRENCY="4")
        # 36 % of creations fail (429 or 500): 12 attempts make running out of them
        # (p = 5e-6 per prediction) a non-event.
        _fast_models(monkeypatch, create_attempts=12)
        keys = _ingest_many(small_settings, sample_photos, 12)
        defs = build_definitions(chained)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", keys)
            for _ in range(2):  # one re-run of every partition
                result = run_range(defs, instance, "mask_job", keys[0], keys[-1])
                assert result.success, [e.message for e in result.all_events if e.is_failure]
        assert fake.stats.throttled and fake.stats.create_errors and fake.stats.read_errors
        assert sum(fake.stats.failed.values())
        paid = sum(fake.stats.creates.values())
    rows = predictions(small_settings)
    assert len(rows) == paid  # every paid prediction is in the ledger
    by_work: dict[str, list[str]] = {}
    for row in rows:
        by_work.setdefault(row.work_key, []).append(row.status)
    assert len(by_work) == 12
    for statuses in by_work.values():
        assert statuses.count("succeeded") == 1
        assert len(statuses) == 1 + statuses.count("failed")
    with session_scope(small_settings.database_url) as session:
        job_cost = session.scalar(select(func.sum(Job.cost_usd)))
        ledger_cost = session.scalar(select(func.sum(Prediction.cost_usd)))
    assert float(job_cost) == pytest.approx(float(ledger_cost), abs=1e-4)


def test_a_photo_the_model_always_fails_is_named_and_spares_its_batch(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = small_settings
    with FakeReplicate(latency_s=0.1) as fake:
        chained = _chain_env(settings, fake, monkeypatch)
        _fast_models(monkeypatch)
        keys = _ingest_many(settings, sample_photos, 3)
        bad = settings.home.parent / "many" / "ITEM-001.jpg"
        bad_sha = hashlib.sha256(bad.read_bytes()).hexdigest()
        fake.faults.always_fail = frozenset({bad_sha})
        defs = build_definitions(chained)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", keys)
            result = run_range(defs, instance, "mask_job", keys[0], keys[-1])
            assert not result.success
            done = instance.get_materialized_partitions(dg.AssetKey("mask"))
        assert done == {keys[0], keys[2]}
        assert fake.stats.creates[bad_sha] == 3  # the first and two replacements, no more
    with session_scope(settings.database_url) as session:
        jobs = list(session.scalars(select(Job)))
    failed = {(j.sku, j.status, j.error_code) for j in jobs if j.img_sha256 == bad_sha}
    assert failed == {("ITEM-001", "FAILED", "REPLICATE_FAILED")}
    assert {j.status for j in jobs if j.img_sha256 != bad_sha} != {"FAILED"}
    assert all(j.error_code is None for j in jobs if j.img_sha256 != bad_sha)


def test_daily_budget_refuses_new_predictions_only(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeReplicate(latency_s=0.3) as fake:
        chained = _chain_env(small_settings, fake, monkeypatch, REPLICATE_DAILY_BUDGET_USD="0.0002")
        _fast_models(monkeypatch)
        keys = _ingest_many(small_settings, sample_photos, 3)
        defs = build_definitions(chained)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", keys)
            job = defs.resolve_job_def("mask_job")
            first = job.execute_in_process(instance=instance, partition_key=keys[0])
            assert first.success
            rest = job.execute_in_process(
                instance=instance, tags=range_tags(keys[1], keys[2]), raise_on_error=False
            )
            assert not rest.success
            # Already-paid work still completes.
            assert job.execute_in_process(instance=instance, partition_key=keys[0]).success
        assert sum(fake.stats.creates.values()) == 1
    with session_scope(small_settings.database_url) as session:
        codes = {j.error_code for j in session.scalars(select(Job).where(Job.sku != "ITEM-000"))}
    assert codes == {"BUDGET_EXCEEDED"}


GENERATIVE_THEME = """
  garden:
    background:
      style: generative
      model: "bria/generate-background:{version}"
      prompt: "on a mossy stone in a sunlit garden"
      negative_prompt: "text, watermark"
      seed: 42
    canvas: [256, 256]
    output: {{format: jpeg}}
    publish: auto
"""


def test_generative_theme_paints_once_per_image_and_keeps_the_product(
    small_settings: Settings, sample_photos: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    from PIL import Image

    from imgpipe_assets.partitions import multi_key
    from tests.helpers import SMALL_THEMES

    themes = small_settings.themes_path
    themes.write_text(SMALL_THEMES + GENERATIVE_THEME.format(version="b" * 64))
    with FakeReplicate(latency_s=0.2) as fake:
        chained = _chain_env(small_settings, fake, monkeypatch, IMGPIPE_BACKGROUNDS="replicate")
        _fast_models(monkeypatch)
        (key,) = _ingest_many(small_settings, sample_photos, 1)
        defs = build_definitions(chained)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("images", [key])
            job = defs.resolve_job_def("mask_job")
            assert job.execute_in_process(instance=instance, partition_key=key).success
            render = defs.resolve_job_def("render_job")
            tags = range_tags(str(multi_key(key, "white")), str(multi_key(key, "garden")))
            for _ in range(2):  # the re-run reuses the stored background
                result = render.execute_in_process(instance=instance, tags=tags)
                assert result.success
        paid = sorted(fake.stats.creates.values())
        assert paid == [1, 1]  # one cut-out, one generated background: never again
    with session_scope(small_settings.database_url) as session:
        garden = session.scalars(select(Job).where(Job.theme == "garden")).one()
        stages = {p.stage for p in session.scalars(select(Prediction))}
    assert stages == {"mask", "background"}
    with session_scope(small_settings.database_url) as session:
        keys = {p.stage: p.output_key for p in session.scalars(select(Prediction))}
    assert keys["mask"] and keys["mask"].startswith("masks/")
    assert keys["background"] == garden.background_key
    assert garden.background_key and garden.background_key.startswith("backgrounds/garden/")
    assert float(garden.cost_usd) > 0
    composite = np.asarray(Image.open(small_settings.home / garden.composite_key))
    assert composite.shape == (256, 256, 3)
    # The generated scene is a gradient with no product: the product comes from the photo.
    assert composite.std() > 10


def test_generative_theme_without_a_provider_is_a_named_error_and_spares_the_other_themes(
    small_settings: Settings, sample_photos: dict
) -> None:
    """One render run over two images x four themes: the garden backgrounds fail, and
    every other theme's background and composite is still made in that run."""
    from imgpipe_assets.partitions import multi_key, split_multi_key
    from tests.helpers import SMALL_THEMES

    small_settings.themes_path.write_text(SMALL_THEMES + GENERATIVE_THEME.format(version="b" * 64))
    keys = _ingest_many(small_settings, sample_photos, 2)
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        assert (
            defs.resolve_job_def("mask_job")
            .execute_in_process(instance=instance, tags=range_tags(keys[0], keys[1]))
            .success
        )
        first, last = str(multi_key(keys[0], "white")), str(multi_key(keys[1], "garden"))
        result = run_range(defs, instance, "render_job", first, last)
        assert not result.success
        made = {
            asset: {
                split_multi_key(k) for k in instance.get_materialized_partitions(dg.AssetKey(asset))
            }
            for asset in ("backgrounds", "composite")
        }
    spared = {(k, t) for k in keys for t in ("white", "marble", "night")}
    assert made == {"backgrounds": spared, "composite": spared}
    with session_scope(small_settings.database_url) as session:
        jobs = list(session.scalars(select(Job)))
    garden = {(j.status, j.error_code) for j in jobs if j.theme == "garden"}
    assert garden == {("FAILED", "GENERATIVE_UNAVAILABLE")}  # not overwritten by a later stage
    others = [j for j in jobs if j.theme != "garden"]
    assert len(others) == 6 and all(j.composite_key and j.error_code is None for j in others)
