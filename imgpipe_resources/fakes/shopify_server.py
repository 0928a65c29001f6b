"""A local HTTP server that plays Shopify's Admin GraphQL API for imgpipe's documents.

Each request's document is validated against the real Admin schema when one is given; the
operations imgpipe sends are then carried out on products, variants, files and media kept
in memory. Faults: THROTTLED (HTTP 200, with ``extensions.cost``), 429 with Retry-After,
5xx, and media that end FAILED.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from imgpipe_resources.fakes.base import JsonHandler, LocalServer


@dataclass
class ShopFaults:
    throttled: float = 0.0
    too_many: float = 0.0  # HTTP 429
    server_error: float = 0.0  # HTTP 502
    failed_media: float = 0.0
    polls_until_ready: int = 1
    seed: int = 0


@dataclass
class _File:
    id: str
    filename: str
    alt: str
    source: str
    status: str = "UPLOADED"
    polls: int = 0
    fails: bool = False


@dataclass
class ShopStats:
    requests: int = 0
    throttled: int = 0
    too_many: int = 0
    server_errors: int = 0
    staged_bytes: int = 0
    reorders: int = 0
    invalid_documents: list[str] = field(default_factory=list)
    attachments: Counter[tuple[str, str]] = field(default_factory=Counter)  # (product, file)


class FakeShopify(LocalServer):
    def __init__(self, schema_path: Path | None = None, faults: ShopFaults | None = None) -> None:
        self.faults = faults or ShopFaults()
        self.stats = ShopStats()
        self._schema = None
        if schema_path is not None and schema_path.is_file():
            from graphql import build_client_schema

            with gzip.open(schema_path) as fh:
                self._schema = build_client_schema(json.load(fh)["data"])
        self.products: dict[str, dict[str, Any]] = {}
        self.variants: list[dict[str, str]] = []
        self.files: dict[str, _File] = {}
        self.media: dict[str, list[str]] = {}  # product id -> attached media ids
        self._ids = 1000
        super().__init__(self.faults.seed)

    def _next(self, kind: str) -> str:
        with self._lock:
            self._ids += 1
            return f"gid://shopify/{kind}/{self._ids}"

    def add_product(self, title: str, skus: list[str], own_media: int = 1) -> str:
        pid = self._next("Product")
        self.products[pid] = {"id": pid, "title": title, "handle": title.lower().replace(" ", "-")}
        for sku in skus:
            self.variants.append({"id": self._next("ProductVariant"), "sku": sku, "product": pid})
        self.media[pid] = [self._own_photo(pid, i) for i in range(own_media)]
        return pid

    def _own_photo(self, pid: str, i: int) -> str:
        fid = self._next("MediaImage")
        self.files[fid] = _File(fid, f"retailer-photo-{i}.jpg", "", "", "READY")
        return fid

    def attached(self, product_id: str) -> list[str]:
        return [self.files[m].filename for m in self.media.get(product_id, [])]

    # --- operations -----------------------------------------------------------------------

    def _url_of(self, f: _File) -> str:
        return f"https://cdn.shopify.test/s/files/1/{f.filename}?v=1"

    def _op(self, name: str, v: dict[str, Any]) -> dict[str, Any]:
        if name == "FindVariantsBySku":
            sku = v["query"].split(":", 1)[1].strip('"')
            nodes: list[dict[str, Any]] = [
                {"id": x["id"], "sku": x["sku"], "product": self.products[x["product"]]}
                for x in self.variants
                if x["sku"] == sku
            ]
            return {"productVariants": {"nodes": nodes}}
        if name == "FindFiles":
            prefix = v["query"].split(":", 1)[1].rstrip("*")
            nodes = [
                {
                    "id": f.id,
                    "alt": f.alt,
                    "fileStatus": f.status,
                    # As Shopify answers: no image while processing, and the source is
                    # the URL the file was created from (a presigned or staged URL).
                    "image": {"url": self._url_of(f)} if f.status == "READY" else None,
                    "originalSource": {"url": f.source},
                }
                for f in self.files.values()
                if f.filename.startswith(prefix)
            ]
            return {"files": {"nodes": nodes}}
        if name == "ProductMedia":
            pid = v["id"]
            if pid not in self.products:
                return {"product": None}
            nodes = [
                {"id": m, "alt": self.files[m].alt, "status": self.files[m].status}
                for m in self.media[pid]
            ]
            return {"product": {"id": pid, "media": {"nodes": nodes}}}
        if name == "FileStatus":
            f = self.files.get(v["id"])
            if f is None:
                return {"node": None}
            f.polls += 1
            if (
                f.status != "READY"
                and f.status != "FAILED"
                and f.polls >= self.faults.polls_until_ready
            ):
                f.status = "FAILED" if f.fails else "READY"
            errors = (
                [{"code": "IMAGE_DOWNLOAD_FAILURE", "message": "injected", "details": None}]
                if f.status == "FAILED"
                else []
            )
            return {
                "node": {
                    "id": f.id,
                    "fileStatus": f.status,
                    "mediaErrors": errors,
                    "fileErrors": [],
                }
            }
        if name == "CreateFile":
            (spec,) = v["files"]
            with self._lock:
                if any(f.filename == spec["filename"] for f in self.files.values()):
                    return {
                        "fileCreate": {
                            "files": [],
                            "userErrors": [
                                {
                                    "field": ["files", "0", "filename"],
                                    "code": "DUPLICATE_FILENAME",
                                    "message": "a file with this name exists",
                                }
                            ],
                        }
                    }
                fid = f"gid://shopify/MediaImage/{self._ids + 1}"
                self._ids += 1
                f = _File(
                    fid,
                    spec["filename"],
                    spec.get("alt") or "",
                    spec["originalSource"],
                    fails=self._random.random() < self.faults.failed_media,
                )
                self.files[fid] = f
            return {
                "fileCreate": {
                    "files": [{"id": fid, "fileStatus": f.status, "alt": f.alt}],
                    "userErrors": [],
                }
            }
        if name == "UpdateFile":
            (spec,) = v["files"]
            f = self.files[spec["id"]]
            with self._lock:
                for pid in spec.get("referencesToAdd") or []:
                    if f.id not in self.media[pid]:
                        self.media[pid].append(f.id)
                        self.stats.attachments[(pid, f.filename)] += 1
                for pid in spec.get("referencesToRemove") or []:
                    if f.id in self.media[pid]:
                        self.media[pid].remove(f.id)
            return {
                "fileUpdate": {"files": [{"id": f.id, "fileStatus": f.status}], "userErrors": []}
            }
        if name == "ReorderMedia":
            pid = v["id"]
            with self._lock:
                media = self.media[pid]
                for move in v["moves"]:
                    if move["id"] in media:
                        media.remove(move["id"])
                        media.insert(int(move["newPosition"]), move["id"])
                self.stats.reorders += 1
            return {
                "productReorderMedia": {
                    "job": {"id": self._next("Job")},
                    "mediaUserErrors": [],
                }
            }
        if name == "StageUpload":
            (spec,) = v["input"]
            n = self._next("StagedUpload").rsplit("/", 1)[1]
            return {
                "stagedUploadsCreate": {
                    "stagedTargets": [
                        {
                            "url": f"{self.url}/staged/{n}",
                            "resourceUrl": f"https://shopify-staged.test/tmp/{n}/{spec['filename']}",
                            "parameters": [{"name": "key", "value": f"tmp/{n}/{spec['filename']}"}],
                        }
                    ],
                    "userErrors": [],
                }
            }
        raise ValueError(f"operation {name} is not played by this fake")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/staged/"):
                    fake.stats.staged_bytes += len(raw)
                    self.send_json(201, {})
                    return
                body = json.loads(raw)
                fake.stats.requests += 1
                if not self.path.endswith("/graphql.json") or not self.headers.get(
                    "X-Shopify-Access-Token"
                ):
                    self.send_json(401, {"errors": "[API] Invalid API key or access token"})
                    return
                cost: dict[str, Any] = {
                    "requestedQueryCost": 12,
                    "actualQueryCost": 12,
                    "throttleStatus": {
                        "maximumAvailable": 2000.0,
                        "currentlyAvailable": 1988.0,
                        "restoreRate": 100.0,
                    },
                }
                if fake.roll(fake.faults.server_error):
                    fake.stats.server_errors += 1
                    self.send_json(502, {"errors": "Bad Gateway"})
                    return
                if fake.roll(fake.faults.too_many):
                    fake.stats.too_many += 1
                    self.send_json(429, {"errors": "Throttled"}, {"Retry-After": "0.05"})
                    return
                if fake.roll(fake.faults.throttled):
                    fake.stats.throttled += 1
                    throttled = {
                        **cost,
                        "throttleStatus": {**cost["throttleStatus"], "currentlyAvailable": 7.0},
                    }
                    self.send_json(
                        200,
                        {
                            "errors": [
                                {"message": "Throttled", "extensions": {"code": "THROTTLED"}}
                            ],
                            "extensions": {"cost": throttled},
                        },
                    )
                    return
                from graphql import OperationDefinitionNode, parse, validate

                document = parse(body["query"])
                if fake._schema is not None:
                    errors = validate(fake._schema, document)
                    if errors:
                        fake.stats.invalid_documents.append(errors[0].message)
                        self.send_json(200, {"errors": [{"message": e.message} for e in errors]})
                        return
                (op,) = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
                data = fake._op(op.name.value if op.name else "", body.get("variables") or {})
                self.send_json(200, {"data": data, "extensions": {"cost": cost}})

        return Handler
