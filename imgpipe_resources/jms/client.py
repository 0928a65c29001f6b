"""3JMS's REST API, for polling new images. Paths and field names are configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
import httpx
from pydantic import Field

from imgpipe_assets.errors import JmsUnavailable
from imgpipe_resources.http import Again, RetryPolicy, again_if_transient
from imgpipe_resources.jms.payload import FieldMap


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_page: str | None
    newest: str | None  # the largest `updated` value on the page


class JmsClient(dg.ConfigurableResource):
    """Reads ``GET {base_url}{images_path}?{since_param}=...&{page_param}=...``.

    Defaults expect ``{"images": [...], "next": "<page token or null>"}`` with each image's
    ``updatedAt``; every name is configurable because 3JMS's API is the retailer's own.
    """

    base_url: str | None = Field(default=None, description="JMS_BASE_URL; unset turns polling off")
    api_token: str | None = Field(default=None, description="JMS_API_TOKEN (Bearer)")
    images_path: str = "/images"
    since_param: str = "since"
    page_param: str = "page"
    items_field: str = "images"
    next_field: str = "next"
    updated_field: str = "updatedAt"
    sku_field: str = "sku"
    image_url_field: str = "imageUrl"
    sha256_field: str = "sha256"
    timeout_s: float = 10.0
    max_attempts: int = 3
    backoff_s: float = 0.5

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    @property
    def fields(self) -> FieldMap:
        return FieldMap(
            sku=self.sku_field, image_url=self.image_url_field, sha256=self.sha256_field
        )

    def fetch_page(self, since: str | None, page: str | None) -> Page:
        if not self.base_url:
            raise JmsUnavailable("JMS_BASE_URL is not set")
        params = {k: v for k, v in ((self.since_param, since), (self.page_param, page)) if v}
        headers = {"Accept": "application/json"}
        if self.api_token:
            headers["Authorization"] = f"Bearer {self.api_token}"
        url = self.base_url.rstrip("/") + self.images_path

        def attempt() -> Page:
            try:
                response = httpx.get(url, params=params, headers=headers, timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                raise Again(type(exc).__name__) from None
            again_if_transient(response.status_code, response.headers)
            if response.status_code != 200:
                raise JmsUnavailable(f"{url} failed: HTTP {response.status_code}")
            return self._page(response)

        policy = RetryPolicy(self.max_attempts, self.backoff_s, max_wait_s=30.0)
        return policy.run(attempt, lambda last: JmsUnavailable(f"{url} failed: {last}"))

    def _page(self, response: httpx.Response) -> Page:
        try:
            body = response.json()
            items = list(body.get(self.items_field) or [])
            next_page = body.get(self.next_field)
        except (ValueError, AttributeError, TypeError):
            raise JmsUnavailable(
                "3JMS answered with something that is not the expected JSON"
            ) from None
        items = [i for i in items if isinstance(i, dict)]
        stamps = [str(i[self.updated_field]) for i in items if i.get(self.updated_field)]
        return Page(items, str(next_page) if next_page else None, max(stamps) if stamps else None)
