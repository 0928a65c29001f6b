"""Publishing composites to Shopify through the Admin GraphQL API, exactly once.

No request carries an idempotency key, so duplicates are prevented by construction: each
composite has a deterministic filename per (sku, sha256, theme); before creating, the
client looks the filename up; a file that exists is only (re)attached. A re-run, a retry
after a timeout, or a crash between create and record therefore never attaches twice.
Throttling is read from ``extensions.cost.throttleStatus`` (THROTTLED arrives as HTTP 200
or 429); 5xx and network errors are retried with a bounded backoff.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from pydantic import Field, PrivateAttr

from imgpipe_assets.errors import (
    MediaFailed,
    ShopifyError,
    ShopifyUnavailable,
    SkuAmbiguous,
    SkuNotFound,
)
from imgpipe_resources.http import Again, RetryPolicy, again_if_transient
from imgpipe_resources.publishing import MediaRequest, ProductRef, PublishedMedia, Publisher
from imgpipe_resources.shopify import documents as docs


def _basename(url: str | None) -> str:
    return (url or "").split("?", 1)[0].rsplit("/", 1)[-1]


class ShopifyAdmin(Publisher):
    """Shopify's Admin GraphQL API (SHOPIFY_STORE_DOMAIN, SHOPIFY_ADMIN_TOKEN)."""

    store_domain: str = Field(description="SHOPIFY_STORE_DOMAIN, e.g. my-shop.myshopify.com")
    admin_token: str = Field(description="SHOPIFY_ADMIN_TOKEN (Admin API access token)")
    api_version: str = Field(default="2025-01", description="SHOPIFY_API_VERSION")
    admin_url: str | None = Field(
        default=None, description="SHOPIFY_ADMIN_URL: overrides https://{store_domain}"
    )
    attach_strategy: str = Field(default="append", description="SHOPIFY_ATTACH_STRATEGY")
    timeout_s: float = 30.0
    max_attempts: int = 8
    backoff_s: float = 0.5
    max_wait_s: float = 30.0
    ready_timeout_s: float = 120.0
    ready_poll_s: float = 1.0
    _http: Any = PrivateAttr(default=None)

    @property
    def endpoint(self) -> str:
        base = (self.admin_url or f"https://{self.store_domain}").rstrip("/")
        return f"{base}/admin/api/{self.api_version}/graphql.json"

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=self.timeout_s,
                headers={
                    "X-Shopify-Access-Token": self.admin_token,
                    "Content-Type": "application/json",
                },
            )
        return self._http

    def _throttle_wait(self, body: dict[str, Any]) -> float:
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        needed = float(cost.get("requestedQueryCost") or 50)
        available = float(status.get("currentlyAvailable") or 0)
        rate = float(status.get("restoreRate") or 50) or 50.0
        return max(0.05, (needed - available) / rate)

    def graphql(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        """Send one document; wait out throttling, retry transient failures, raise the rest."""
        policy = RetryPolicy(self.max_attempts, self.backoff_s, self.max_wait_s)

        def attempt() -> dict[str, Any]:
            try:
                response = self._client().post(
                    self.endpoint, json={"query": document, "variables": variables}
                )
            except httpx.TransportError as exc:
                raise Again(type(exc).__name__) from None
            again_if_transient(response.status_code, response.headers)
            if response.status_code != 200:
                raise ShopifyError(
                    f"Shopify answered HTTP {response.status_code}: {response.text[:200]}"
                )
            body = response.json()
            errors = body.get("errors") or []
            codes = {(e.get("extensions") or {}).get("code") for e in errors}
            if "THROTTLED" in codes:
                raise Again("THROTTLED", self._throttle_wait(body))
            if errors:
                raise ShopifyError("; ".join(str(e.get("message")) for e in errors)[:500])
            return dict(body.get("data") or {})

        return policy.run(
            attempt,
            lambda last: ShopifyUnavailable(
                f"Shopify did not answer after {self.max_attempts} attempts ({last})"
            ),
        )

    def find_product(self, sku: str) -> ProductRef:
        data = self.graphql(docs.FIND_VARIANTS, {"query": f'sku:"{sku}"'})
        nodes = [n for n in data["productVariants"]["nodes"] if n.get("sku") == sku]
        products = {n["product"]["id"] for n in nodes}
        if not nodes:
            raise SkuNotFound(f"no Shopify variant has SKU {sku}")
        if len(products) > 1:
            raise SkuAmbiguous(
                f"SKU {sku} belongs to {len(products)} products: " + ", ".join(sorted(products))
            )
        node = nodes[0]
        return ProductRef(
            node["product"]["id"],
            node["id"],
            node["product"].get("handle"),
            node["product"].get("title"),
        )

    def _files_named(self, prefix: str) -> list[dict[str, Any]]:
        """imgpipe's files whose name starts with ``prefix``, in every state.

        Shopify's ``filename:`` search answers by the name it keeps for the file. A READY
        file is checked once more by its image URL's name; one still processing has no
        image URL yet, and its source URL is wherever it was created from (a presigned or
        staged URL), so the search's answer is taken for it: nothing else is named
        ``imgpipe-{sku}-{sha}-{theme}``."""
        data = self.graphql(docs.FIND_FILES, {"query": f"filename:{prefix}*"})
        ours = []
        for node in data["files"]["nodes"]:
            image = (node.get("image") or {}).get("url")
            if image is None or _basename(image).startswith(prefix):
                ours.append(node)
        return ours

    def _media(self, product_id: str) -> list[str]:
        """The product's media ids, in the shop's order (the first is its featured image)."""
        data = self.graphql(docs.PRODUCT_MEDIA, {"id": product_id})
        return [m["id"] for m in ((data.get("product") or {}).get("media") or {}).get("nodes", [])]

    def _attached(self, product_id: str) -> set[str]:
        return set(self._media(product_id))

    def _mutate(
        self, document: str, field: str, variables: dict[str, Any], errors: str = "userErrors"
    ) -> dict[str, Any]:
        result = self.graphql(document, variables)[field]
        if result.get(errors):
            raise ShopifyError(
                "; ".join(
                    f"{e.get('code') or ''} {e.get('message')}".strip() for e in result[errors]
                )
            )
        return dict(result)

    def _feature(self, product_id: str, media_id: str) -> bool:
        """Make the media the product's first; False when it already is (nothing sent)."""
        order = self._media(product_id)
        if not order or order[0] == media_id:
            return False
        moves = [{"id": media_id, "newPosition": "0"}]
        self._mutate(
            docs.REORDER_MEDIA,
            "productReorderMedia",
            {"id": product_id, "moves": moves},
            errors="mediaUserErrors",
        )
        return True

    def _wait_ready(self, file_id: str) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            node = self.graphql(docs.FILE_STATUS, {"id": file_id}).get("node") or {}
            status = node.get("fileStatus")
            if status == "READY":
                return
            if status == "FAILED":
                problems = (node.get("mediaErrors") or []) + (node.get("fileErrors") or [])
                detail = "; ".join(f"{p.get('code')}: {p.get('message')}" for p in problems)
                raise MediaFailed(f"Shopify could not process {file_id}: {detail or 'FAILED'}")
            if time.monotonic() > deadline:
                raise MediaFailed(f"{file_id} was not READY after {self.ready_timeout_s:.0f} s")
            time.sleep(self.ready_poll_s)

    def publish(self, request: MediaRequest, product: ProductRef) -> PublishedMedia:
        stem = request.filename.rsplit(".", 1)[0]
        existing = self._files_named(stem)
        created = False
        if existing:
            file_id = existing[0]["id"]
        else:
            source = request.source_url or self._stage(request)
            try:
                result = self._mutate(
                    docs.FILE_CREATE,
                    "fileCreate",
                    {
                        "files": [
                            {
                                "originalSource": source,
                                "contentType": "IMAGE",
                                "alt": request.alt,
                                "filename": request.filename,
                                "duplicateResolutionMode": "RAISE_ERROR",
                            }
                        ]
                    },
                )
                file_id, created = result["files"][0]["id"], True
            except ShopifyError:
                # A file of that name appeared since we looked (a concurrent or earlier
                # attempt): use it rather than make a second.
                existing = self._files_named(stem)
                if not existing:
                    raise
                file_id = existing[0]["id"]
        self._wait_ready(file_id)
        attached = self._attached(product.product_id)
        if file_id not in attached:
            self._mutate(
                docs.FILE_UPDATE,
                "fileUpdate",
                {"files": [{"id": file_id, "referencesToAdd": [product.product_id]}]},
            )
            created = True
        removed = (
            self._replace_older(request, product, file_id, attached)
            if (self.attach_strategy == "replace")
            else []
        )
        featured = request.featured and self._feature(product.product_id, file_id)
        return PublishedMedia(
            product.product_id,
            product.variant_id or "",
            file_id,
            created,
            False,
            f"{self.endpoint} {file_id}",
            removed,
            featured,
        )

    def _stage(self, request: MediaRequest) -> str:
        """Upload the bytes to Shopify's staged storage; return the source URL to create from."""
        if request.content is None:
            raise ShopifyError(f"{request.filename}: no public URL and no bytes to upload")
        result = self._mutate(
            docs.STAGED_UPLOAD,
            "stagedUploadsCreate",
            {
                "input": [
                    {
                        "resource": "IMAGE",
                        "filename": request.filename,
                        "mimeType": request.content_type,
                        "httpMethod": "POST",
                        "fileSize": str(len(request.content)),
                    }
                ]
            },
        )
        target = result["stagedTargets"][0]
        form = {p["name"]: p["value"] for p in target.get("parameters") or []}
        content = request.content or b""

        def attempt() -> str:
            try:
                response = httpx.post(
                    target["url"],
                    data=form,
                    timeout=self.timeout_s,
                    files={"file": (request.filename, content, request.content_type)},
                )
            except httpx.TransportError as exc:
                raise Again(type(exc).__name__) from None
            again_if_transient(response.status_code, response.headers)
            if response.status_code >= 300:
                raise ShopifyUnavailable(
                    f"staged upload of {request.filename} failed (HTTP {response.status_code})"
                )
            return str(target["resourceUrl"])

        policy = RetryPolicy(self.max_attempts, self.backoff_s, self.max_wait_s)
        return policy.run(
            attempt,
            lambda last: ShopifyUnavailable(f"staged upload of {request.filename} failed ({last})"),
        )

    def _replace_older(
        self, request: MediaRequest, product: ProductRef, keep: str, attached: set[str]
    ) -> list[str]:
        """Detach this theme's earlier composites of the SKU (older photos); only files whose
        names follow imgpipe's pattern are ever touched, never the retailer's own photos."""
        ours = re.compile(
            rf"^imgpipe-{re.escape(request.sku)}-[0-9a-f]{{12}}-"
            rf"{re.escape(request.theme)}\.[a-z]+$"
        )
        removed = []
        for f in self._files_named(f"imgpipe-{request.sku}-"):
            name = _basename(
                (f.get("image") or {}).get("url") or (f.get("originalSource") or {}).get("url")
            )
            if f["id"] != keep and f["id"] in attached and ours.match(name):
                self._mutate(
                    docs.FILE_UPDATE,
                    "fileUpdate",
                    {"files": [{"id": f["id"], "referencesToRemove": [product.product_id]}]},
                )
                removed.append(f["id"])
        return removed
