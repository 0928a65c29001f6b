"""The one retry helper: Retry-After in both forms, backoff, the caller's error at the end."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from imgpipe_resources.http import Again, RetryPolicy, again_if_transient, retry_after


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": "0.25"}) == 0.25
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after({"Retry-After": later}, now=now) == pytest.approx(30.0)
    assert retry_after({"Retry-After": format_datetime(now - timedelta(hours=1))}, now=now) == 0
    for bad in ("", "soon", "nan", "inf"):
        assert retry_after({"Retry-After": bad}) is None
    assert retry_after({}) is None


def test_a_policy_waits_what_it_is_asked_or_backs_off_then_gives_up() -> None:
    waits: list[float] = []
    calls = iter([Again("HTTP 429", 2.0), Again("HTTP 503"), Again("timeout", 99.0), "ok"])

    def attempt() -> str:
        outcome = next(calls)
        if isinstance(outcome, Again):
            raise outcome
        return outcome

    policy = RetryPolicy(attempts=4, backoff_s=0.5, max_wait_s=10.0)
    assert policy.run(attempt, RuntimeError, sleep=waits.append) == "ok"
    assert waits == [2.0, 1.0, 10.0]  # asked, backed off (0.5 * 2), capped

    def always() -> str:
        raise Again("HTTP 500")

    with pytest.raises(RuntimeError, match="HTTP 500"):
        RetryPolicy(attempts=2, backoff_s=0).run(always, RuntimeError, sleep=waits.append)


def test_only_transient_answers_are_tried_again() -> None:
    with pytest.raises(Again) as again:
        again_if_transient(429, {"Retry-After": "3"})
    assert again.value.wait_s == 3.0
    again_if_transient(200, {})
    again_if_transient(404, {})
