"""Retrying HTTP calls the one way every client here does it.

A call is tried up to ``attempts`` times. An attempt that should be tried again raises
``Again`` with its reason and, where the server said how long to wait (``Retry-After``, in
seconds or as an HTTP date, or a bucket's refill time), that wait; otherwise the wait grows
exponentially from ``backoff_s``. Waits are capped at ``max_wait_s``; when the attempts
are spent the caller's error is raised with the last reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

# Answers worth asking again: throttled, timed out upstream, or the server's own trouble.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Again(Exception):
    """Raised by an attempt that should be retried."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None
    when there is none or it cannot be read."""
    value = (headers.get("Retry-After") or headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds == float("inf"):  # NaN, infinity
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 30.0

    def wait(self, attempt: int, asked_s: float | None = None) -> float:
        """How long to wait after attempt number ``attempt`` (0-based) failed."""
        wanted = asked_s if asked_s is not None else self.backoff_s * 2**attempt
        return min(max(0.0, wanted), self.max_wait_s)

    def run(
        self,
        attempt: Callable[[], T],
        give_up: Callable[[str], Exception],
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """``attempt()`` until it returns, at most ``attempts`` times; then ``give_up``."""
        last = "no attempt"
        for number in range(self.attempts):
            try:
                return attempt()
            except Again as again:
                last = again.reason
                if number + 1 < self.attempts:
                    sleep(self.wait(number, again.wait_s))
        raise give_up(last)


def again_if_transient(status: int, headers: Mapping[str, str]) -> None:
    """Raise ``Again`` for a throttled or failing answer, with the wait it asked for."""
    if status in TRANSIENT_STATUS:
        raise Again(f"HTTP {status}", retry_after(headers))
