from decimal import Decimal

import pytest

from imgpipe_resources.db.jobs import TRANSITIONS, check_transition, enter_stage, fail, finish
from imgpipe_resources.db.models import Job, JobStatus

S = JobStatus


def job(status: JobStatus = S.QUEUED, **fields: object) -> Job:
    return Job(
        sku="A",
        img_sha256="ab" * 32,
        theme="t",
        partition_key="A~abababababab",
        status=status.value,
        attempts=0,
        cost_usd=Decimal(0),
        **fields,
    )


def test_happy_path_reaches_done() -> None:
    j = job()
    enter_stage(j, S.SEGMENTING)
    j.mask_key = "masks/x.png"
    enter_stage(j, S.BG_GENERATING)
    j.background_key = "backgrounds/t/x.png"
    enter_stage(j, S.COMPOSITING)
    j.composite_key = "composites/x.jpg"
    enter_stage(j, S.UPLOADING)
    finish(j)
    assert j.status == "DONE"
    assert j.attempts == 0


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("new", list(S))
def test_only_listed_transitions_are_legal(current: JobStatus, new: JobStatus) -> None:
    if new in TRANSITIONS[current]:
        check_transition(current, new)
    else:
        with pytest.raises(Exception, match="cannot move"):
            check_transition(current, new)


def test_cannot_skip_a_stage_without_its_output() -> None:
    j = job(S.QUEUED)
    with pytest.raises(Exception, match="cannot enter"):
        enter_stage(j, S.COMPOSITING)
    assert j.status == "QUEUED"


def test_new_theme_catches_up_through_recorded_outputs() -> None:
    j = job(S.QUEUED, mask_key="masks/x.png")
    enter_stage(j, S.BG_GENERATING)
    assert j.status == "BG_GENERATING"


def test_rerun_of_a_done_job_requeues_and_counts_an_attempt() -> None:
    j = job(S.DONE, mask_key="m", background_key="b", composite_key="c")
    enter_stage(j, S.COMPOSITING)
    assert j.status == "COMPOSITING"
    assert j.attempts == 1


def test_failed_job_retries_and_clears_its_error() -> None:
    j = job(S.SEGMENTING)
    fail(j, "TRUNCATED_IMAGE", "image data is incomplete")
    assert (j.status, j.error_code) == ("FAILED", "TRUNCATED_IMAGE")
    enter_stage(j, S.SEGMENTING)
    assert (j.status, j.error_code, j.attempts) == ("SEGMENTING", None, 1)


def test_failing_a_done_job_keeps_it_done() -> None:
    j = job(S.DONE)
    fail(j, "X", "late failure")
    assert j.status == "DONE"
    assert j.error_code is None


def test_done_cannot_jump_to_uploading_directly() -> None:
    with pytest.raises(Exception, match="cannot move"):
        check_transition(S.DONE, S.UPLOADING)


def test_mask_rerun_while_awaiting_review_requeues_the_job() -> None:
    j = job(S.COMPOSITING, mask_key="m", background_key="b", composite_key="c")
    enter_stage(j, S.SEGMENTING)
    assert (j.status, j.attempts) == ("SEGMENTING", 1)
