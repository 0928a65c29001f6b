"""Replicate predictions through the official client, paid for once.

A prediction's id is written to the ledger (the ``predictions`` table) the moment it
exists, before anything else can fail. A re-run finds it: an unfinished prediction is
waited on again, a succeeded one whose output is still available is reused, and only
failed ones are retried with a new (paid) prediction. Creation is retried on 429 and 5xx
(the client retries only idempotent requests) honouring ``Retry-After``; a prediction that
outlives the timeout is cancelled. A daily budget refuses new predictions, never the
collection of already-paid ones.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import dagster as dg
import httpx
import replicate
from pydantic import Field, PrivateAttr
from replicate.exceptions import ReplicateError

from imgpipe_assets.errors import (
    BudgetExceeded,
    PredictionFailed,
    PredictionTimeout,
    ReplicateUnavailable,
)
from imgpipe_resources.db.predictions import ACTIVE, Ledger, Work
from imgpipe_resources.http import TRANSIENT_STATUS, Again, RetryPolicy, retry_after


class _RetryAfterTransport(httpx.BaseTransport):
    """Remembers, per thread, the Retry-After of the last throttled or failed response."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code in TRANSIENT_STATUS:
            self.local.retry_after = retry_after(response.headers)
        return response

    def close(self) -> None:
        self.inner.close()

    def take(self) -> float | None:
        value, self.local.retry_after = getattr(self.local, "retry_after", None), None
        return value


@dataclass(frozen=True)
class PredictionOutcome:
    output: Any
    prediction_id: str
    predict_time_s: float
    cost_usd: float
    reused: bool  # an earlier prediction's output was collected; nothing new was paid


class ReplicateModels(dg.ConfigurableResource):
    """Replicate's prediction API (REPLICATE_API_TOKEN, REPLICATE_BASE_URL)."""

    api_token: str | None = Field(default=None, description="REPLICATE_API_TOKEN")
    base_url: str | None = Field(default=None, description="REPLICATE_BASE_URL")
    timeout_s: float = Field(default=300.0, description="JOB_TIMEOUT: cancel after this")
    wait_s: int = Field(default=10, description="Prefer: wait=N on creation (1-60)")
    poll_interval_s: float = 0.25
    create_attempts: int = 6
    backoff_s: float = 1.0
    max_retry_after_s: float = 60.0
    price_per_second_usd: float = Field(default=0.000225, description="per second of predict_time")
    price_per_run_usd: float = Field(default=0.0, description="per prediction")
    prediction_attempts: int = Field(
        default=3, description="Predictions tried per piece of work when one ends 'failed'"
    )
    daily_budget_usd: float | None = Field(default=None, description="REPLICATE_DAILY_BUDGET_USD")
    _client: Any = PrivateAttr(default=None)
    _transport: Any = PrivateAttr(default=None)

    def client(self) -> replicate.Client:
        if self._client is None:
            self._transport = _RetryAfterTransport(httpx.HTTPTransport())
            self._client = replicate.Client(
                api_token=self.api_token,
                base_url=self.base_url,
                timeout=httpx.Timeout(10.0, read=float(self.wait_s) + 30.0),
                transport=self._transport,
            )
        return self._client

    def cost(self, predict_time_s: float) -> float:
        return predict_time_s * self.price_per_second_usd + self.price_per_run_usd

    def _create(self, model: str, inputs: dict[str, Any]) -> Any:
        """Create a prediction, retrying throttled and failed creations (the client retries
        only idempotent requests) as long as Retry-After asks, within ``create_attempts``."""
        predictions = self.client().predictions

        def attempt() -> Any:
            try:
                if ":" in model:
                    return predictions.create(
                        version=model.split(":", 1)[1], input=inputs, wait=self.wait_s
                    )
                return predictions.create(model=model, input=inputs, wait=self.wait_s)
            except ReplicateError as exc:
                last = f"HTTP {exc.status}: {exc.detail or exc.title}"
                if exc.status != 429 and (exc.status or 0) < 500:
                    raise PredictionFailed(f"Replicate refused the prediction: {last}") from None
                raise Again(last, self._transport.take()) from None
            except httpx.TransportError as exc:
                raise Again(type(exc).__name__, self._transport.take()) from None

        policy = RetryPolicy(self.create_attempts, self.backoff_s, self.max_retry_after_s)
        return policy.run(
            attempt,
            lambda last: ReplicateUnavailable(
                f"could not create a prediction after {self.create_attempts} attempts ({last})"
            ),
        )

    def _wait(self, prediction: Any, ledger: Ledger) -> Any:
        deadline = time.monotonic() + self.timeout_s
        while prediction.status in ACTIVE:
            if time.monotonic() > deadline:
                try:
                    prediction.cancel()
                finally:
                    ledger.finished(prediction.id, "canceled", error="timed out")
                raise PredictionTimeout(
                    f"prediction {prediction.id} took longer than {self.timeout_s:.0f} s; "
                    "it was cancelled"
                )
            time.sleep(self.poll_interval_s)
            try:
                prediction.reload()
            except (ReplicateError, httpx.TransportError):
                continue  # a transient read error: the prediction goes on; ask again
        return prediction

    def _earlier(self, prediction_id: str) -> Any:
        """An earlier prediction, or None if Replicate no longer knows it (404).

        Any other failure to read it is raised: paying again for work that may have
        succeeded is worse than retrying later.
        """
        try:
            return self.client().predictions.get(prediction_id)
        except ReplicateError as exc:
            if exc.status == 404:
                return None
            raise ReplicateUnavailable(
                f"could not read earlier prediction {prediction_id}: HTTP {exc.status}"
            ) from None
        except httpx.TransportError as exc:
            raise ReplicateUnavailable(
                f"could not read earlier prediction {prediction_id}: {type(exc).__name__}"
            ) from None

    def run(self, work: Work, inputs: dict[str, Any], ledger: Ledger) -> PredictionOutcome:
        """The output of ``work``: from an earlier prediction if one paid for it, else new.

        A prediction that ends ``failed`` is tried again, up to ``prediction_attempts``
        predictions in all; each is in the ledger with its cost.
        """
        failed_cost = 0.0
        for attempt in range(self.prediction_attempts):
            try:
                outcome = self._run_once(work, inputs, ledger)
            except PredictionFailed as exc:
                failed_cost += exc.cost_usd
                if not exc.retryable or attempt + 1 == self.prediction_attempts:
                    raise
            else:
                # The caller is charged for every prediction this call paid for.
                return replace(outcome, cost_usd=outcome.cost_usd + failed_cost)
        raise AssertionError("unreachable")

    def _run_once(self, work: Work, inputs: dict[str, Any], ledger: Ledger) -> PredictionOutcome:
        prior = ledger.latest(work.key)
        prediction = None
        if prior is not None and (prior.status in ACTIVE or prior.status == "succeeded"):
            prediction = self._earlier(prior.id)
            if (
                prediction is not None
                and prediction.status == "succeeded"
                and not prediction.output
            ):
                prediction = None  # Replicate deleted its output (after an hour)
        reused = prediction is not None
        if prediction is None:
            if self.daily_budget_usd is not None:
                spent = ledger.spent_today()
                if spent >= self.daily_budget_usd:
                    raise BudgetExceeded(
                        f"today's Replicate spend ${spent:.4f} has reached the daily budget "
                        f"${self.daily_budget_usd:.4f} (REPLICATE_DAILY_BUDGET_USD)"
                    )
            prediction = self._create(work.model, inputs)
            ledger.started(work, prediction.id, prediction.status)
        prediction = self._wait(prediction, ledger)
        predict_time = float((prediction.metrics or {}).get("predict_time") or 0.0)
        cost = (
            0.0
            if reused and prior is not None and prior.status == "succeeded"
            else self.cost(predict_time)
        )
        if prediction.status != "succeeded":
            ledger.finished(
                prediction.id,
                prediction.status,
                predict_time_s=predict_time,
                cost_usd=cost,
                error=str(prediction.error or "")[:2000],
            )
            reason = prediction.error or "no reason"
            raise PredictionFailed(
                f"prediction {prediction.id} {prediction.status}: {reason}",
                retryable=prediction.status == "failed",
                cost_usd=cost,
            )
        if not (reused and prior is not None and prior.status == "succeeded"):
            ledger.finished(prediction.id, "succeeded", predict_time_s=predict_time, cost_usd=cost)
        return PredictionOutcome(prediction.output, prediction.id, predict_time, cost, reused)


def output_bytes(output: Any, max_bytes: int = 100 * 1024 * 1024) -> bytes:
    """The bytes of a prediction's (first) output: a data URI or a URL Replicate serves."""
    if isinstance(output, list):
        output = output[0] if output else None
    if hasattr(output, "read"):
        return bytes(output.read())
    if not isinstance(output, str):
        raise PredictionFailed(f"unexpected prediction output {type(output).__name__}")
    if output.startswith("data:"):
        return base64.b64decode(output.split(",", 1)[1])
    with httpx.stream("GET", output, timeout=60.0, follow_redirects=True) as response:
        if response.status_code != 200:
            raise PredictionFailed(f"prediction output answered HTTP {response.status_code}")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise PredictionFailed("prediction output is larger than the cap")
        return bytes(body)
