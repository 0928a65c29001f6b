"""The stages on their own: plain calls with plain resources, no Dagster run around them."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgpipe_assets.errors import SkuNotFound
from imgpipe_assets.imaging.pipeline import Cutout
from imgpipe_assets.stages.cutout import CutoutStage
from imgpipe_assets.stages.publish import PublishStage
from imgpipe_assets.stages.render import BackgroundStage, CompositeStage
from imgpipe_resources.backgrounds import NoBackgroundGenerator
from imgpipe_resources.database import JobsDatabase
from imgpipe_resources.fetch import ImageFetcher
from imgpipe_resources.publishing import ProductRef, PublishedMedia, Publisher, ShopifyOutbox
from imgpipe_resources.segmentation import CutoutRequest, LocalSegmenter
from imgpipe_resources.settings import Settings
from imgpipe_resources.storage import LocalObjectStore
from imgpipe_resources.themes import ThemeLibrary
from tests.helpers import ingest, models_dir

THEMES = ["white", "marble", "night"]


class CountingSegmenter(LocalSegmenter):
    """The local model, counting what it is asked to cut out."""

    calls: int = 0

    def cut_out(self, data: bytes, request: CutoutRequest) -> Cutout:
        object.__setattr__(self, "calls", self.calls + 1)
        return super().cut_out(data, request)


class NoShop(Publisher):
    """A shop without any product: every lookup is SKU_NOT_FOUND."""

    def find_product(self, sku: str) -> ProductRef:
        raise SkuNotFound(f"no product with SKU {sku}")

    def publish(self, request: object, product: ProductRef) -> PublishedMedia:
        raise AssertionError("nothing may be published")


@pytest.fixture
def parts(small_settings: Settings) -> dict:
    home = small_settings.home
    return {
        "db": JobsDatabase(url=small_settings.database_url),
        "storage": LocalObjectStore(root=str(home)),
        "themes": ThemeLibrary(path=str(small_settings.themes_path)),
        "outbox": ShopifyOutbox(outbox_dir=str(home / "outbox")),
    }


def _cutout(parts: dict, segmenter: LocalSegmenter, publisher: Publisher) -> CutoutStage:
    return CutoutStage(
        parts["db"], parts["storage"], segmenter, ImageFetcher(), publisher, THEMES, 640, "r1"
    )


def test_a_photo_goes_from_cut_out_to_shop_by_plain_calls(
    small_settings: Settings, sample_photos: dict, parts: dict
) -> None:
    (key,) = ingest(small_settings, [sample_photos["RING-0001"]])
    segmenter = CountingSegmenter(models_dir=str(models_dir()))
    cut = _cutout(parts, segmenter, parts["outbox"])(key)
    assert cut.status == "created" and cut.storage_key and cut.preview_jpeg
    assert cut.facts["sku"] == "RING-0001" and 0.02 < cut.facts["mask_coverage"] < 0.6
    again = _cutout(parts, segmenter, parts["outbox"])(key)
    assert again.status == "cached" and segmenter.calls == 1  # paid for once

    db, storage, themes = parts["db"], parts["storage"], parts["themes"]
    background = BackgroundStage(db, storage, themes, NoBackgroundGenerator(), "r2")
    composite = CompositeStage(db, storage, themes, "r2")
    automatic = PublishStage(db, storage, themes, parts["outbox"], "r2", automatic=True)
    published = {}
    for theme in THEMES:
        pk = f"{key}|{theme}"
        assert background(pk).storage_key
        made = composite(pk)
        assert made.storage_key and f"/{theme}." in made.storage_key and made.preview_jpeg
        assert made.facts["outline_contrast"] > 10  # the ring stands out on every theme
        published[theme] = automatic(pk)
    # 'night' publishes after review: the chain leaves it; a person's approval publishes it.
    assert published["night"] is None
    assert {published[t].status for t in ("white", "marble")} == {"created"}  # type: ignore[union-attr]
    approval = PublishStage(db, storage, themes, parts["outbox"], "r3", automatic=False)
    assert approval(f"{key}|night").status == "created"  # type: ignore[union-attr]
    assert approval(f"{key}|night").status == "already attached"  # type: ignore[union-attr]
    assert len(list(Path(small_settings.home, "outbox").rglob("*.json"))) == 3


def test_a_sku_the_shop_lacks_stops_the_cut_out_before_the_model_runs(
    small_settings: Settings, sample_photos: dict, parts: dict
) -> None:
    (key,) = ingest(small_settings, [sample_photos["WATCH-0002"]])
    segmenter = CountingSegmenter(models_dir=str(models_dir()))
    with pytest.raises(SkuNotFound):
        _cutout(parts, segmenter, NoShop())(key)
    assert segmenter.calls == 0
    assert not list(Path(small_settings.home).glob("masks/*"))
