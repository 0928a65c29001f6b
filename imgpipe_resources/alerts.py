"""Alerts to a Slack incoming webhook (SLACK_WEBHOOK_URL); silent when it is not set."""

from __future__ import annotations

import logging

import dagster as dg
import httpx
from pydantic import Field

log = logging.getLogger(__name__)


class SlackAlerts(dg.ConfigurableResource):
    """Posts failure reports to Slack. The webhook URL is a secret: read through EnvVar."""

    webhook_url: str | None = Field(default=None, description="SLACK_WEBHOOK_URL")
    webserver_url: str = Field(
        default="http://localhost:3000", description="DAGSTER_WEBSERVER_URL, for run links"
    )
    timeout_s: float = 10.0

    def run_link(self, run_id: str) -> str:
        return f"{self.webserver_url.rstrip('/')}/runs/{run_id}"

    def post(self, text: str) -> bool:
        if not self.webhook_url:
            return False
        try:
            response = httpx.post(self.webhook_url, json={"text": text}, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            log.warning("Slack alert not delivered: %s", type(exc).__name__)
            return False
        if response.status_code >= 300:
            log.warning("Slack alert refused: HTTP %s", response.status_code)
            return False
        return True
