"""Quality gates: bad cut-outs stop before compositing, named; the rest of the batch goes on."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from imgpipe_assets.definitions import build_definitions
from imgpipe_assets.imaging.gates import blocking, evaluate
from imgpipe_resources.db.engine import session_scope
from imgpipe_resources.db.models import Job
from imgpipe_resources.settings import Settings
from tests.helpers import ingest, run_range


def disc(size: int = 1000, radius: float = 0.3, cy: float = 0.5) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    return (((yy - cy) ** 2 + (xx - 0.5) ** 2) < radius**2).astype(np.float32)


def outcomes(alpha: np.ndarray, side: int = 1000) -> dict[str, str]:
    return {v.gate: v.outcome for v in evaluate(alpha, side, side)}


def test_a_centred_product_passes_every_gate() -> None:
    assert set(outcomes(disc()).values()) == {"pass"}


@pytest.mark.parametrize(
    ("alpha", "gate"),
    [
        (np.zeros((1000, 1000), np.float32), "coverage"),
        (np.ones((1000, 1000), np.float32), "coverage"),
        (disc(cy=0.85, radius=0.3), "edge_contact"),
    ],
    ids=["empty", "whole-frame", "cut-off"],
)
def test_bad_masks_are_blocked_by_the_right_gate(alpha: np.ndarray, gate: str) -> None:
    assert gate in {v.gate for v in blocking(evaluate(alpha, 1000, 1000))}


def test_shattered_masks_and_tiny_photos_are_blocked_warnings_are_not() -> None:
    confetti = np.zeros((1000, 1000), np.float32)
    for i in range(5):
        for j in range(5):  # 25 separate 20 x 20 pieces
            confetti[100 + 150 * i : 120 + 150 * i, 100 + 150 * j : 120 + 150 * j] = 1.0
    assert outcomes(confetti)["fragments"] == "block"
    assert outcomes(disc(), side=200)["resolution"] == "block"
    assert outcomes(disc(), side=400)["resolution"] == "review"
    assert outcomes(disc(), side=600)["resolution"] == "pass"
    assert outcomes(disc(radius=0.1))["coverage"] == "pass"
    assert outcomes(disc(radius=0.07))["coverage"] == "pass"  # jewellery is small in frame
    assert outcomes(disc(radius=0.03))["coverage"] == "review"


def test_a_blank_photo_stops_at_the_gate_and_its_neighbour_goes_on(
    small_settings: Settings, sample_photos: dict, tmp_path: Path
) -> None:
    blank = tmp_path / "BLANK-1.png"
    buf = io.BytesIO()
    Image.new("RGB", (640, 640), (240, 240, 240)).save(buf, "PNG")
    blank.write_bytes(buf.getvalue())
    keys = ingest(small_settings, [blank, sample_photos["RING-0001"]])
    defs = build_definitions(small_settings)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", keys)
        result = run_range(defs, instance, "mask_job", keys[0], keys[1])
        assert not result.success
        assert instance.get_materialized_partitions(dg.AssetKey("mask")) == {keys[1]}
        # Each image's quality_gates evaluation is recorded for the UI, with its reason.
        evaluations = {
            e.dagster_event.event_specific_data.partition: e.dagster_event.event_specific_data
            for e in instance.all_logs(
                result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        }
        assert set(evaluations) == set(keys)
        assert not evaluations[keys[0]].passed and evaluations[keys[1]].passed
        assert "coverage" in evaluations[keys[0]].metadata["reason"].value
        assert evaluations[keys[0]].check_name == "quality_gates"
    with session_scope(small_settings.database_url) as session:
        blank_jobs = session.scalars(select(Job).where(Job.sku == "BLANK-1")).all()
    assert {j.error_code for j in blank_jobs} == {"QUALITY_GATE"}
    assert all("coverage" in (j.error_message or "") for j in blank_jobs)
    assert (small_settings.home / "masks").is_dir()  # the mask was kept for a person to see


def test_one_image_from_the_ui_runs_the_check_as_its_own_blocking_step(
    small_settings: Settings, sample_photos: dict
) -> None:
    (key,) = ingest(small_settings, [sample_photos["PENDANT-0003"]])
    defs = build_definitions(small_settings)
    mask_def = next(a for a in defs.assets or [] if a.key == dg.AssetKey("mask"))
    checks = list(defs.asset_checks or [])
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("images", [key])
        result = dg.materialize(
            [mask_def, *checks], partition_key=key, instance=instance, resources=defs.resources
        )
        assert result.success
        (evaluation,) = result.get_asset_check_evaluations()
        assert evaluation.check_name == "quality_gates" and evaluation.passed
        assert evaluation.partition == key
        assert evaluation.blocking
        # Recorded once: the step's own, not a second one from inside the mask step.
        logged = instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        assert len(logged) == 1
