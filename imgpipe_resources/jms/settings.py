"""3JMS settings from the environment (read when a process starts, never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


@dataclass(frozen=True)
class JmsSettings:
    webhook_secrets: tuple[str, ...]
    timestamp_tolerance_s: int
    max_body_bytes: int
    base_url: str | None
    api_token: str | None
    poll_interval_s: int
    allowed_image_hosts: tuple[str, ...]
    images_path: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JmsSettings:
        env = os.environ if env is None else env
        return cls(
            webhook_secrets=_list(env.get("JMS_WEBHOOK_SECRET")),
            timestamp_tolerance_s=int(env.get("JMS_WEBHOOK_TOLERANCE") or 300),
            max_body_bytes=int(env.get("JMS_WEBHOOK_MAX_BODY") or 64 * 1024),
            base_url=(env.get("JMS_BASE_URL") or None),
            api_token=(env.get("JMS_API_TOKEN") or None),
            poll_interval_s=int(env.get("JMS_POLL_INTERVAL") or 300),
            allowed_image_hosts=_list(env.get("JMS_ALLOWED_IMAGE_HOSTS")),
            images_path=env.get("JMS_IMAGES_PATH") or "/images",
        )
