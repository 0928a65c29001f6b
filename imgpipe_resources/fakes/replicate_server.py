"""A local HTTP server that speaks Replicate's prediction API, with fault injection.

Create (``POST /v1/predictions`` with a version, or ``/v1/models/{owner}/{name}/predictions``),
get, cancel, ``Prefer: wait``, the statuses, ``metrics.predict_time``, and outputs as
``data:`` URIs: a cut-out PNG whose alpha separates the photo from its border colour.
Faults: 429 with Retry-After and 500 on creation, 503 on reads, failed and slow predictions.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
import numpy as np
from PIL import Image

from imgpipe_assets.imaging.segment import BorderColour
from imgpipe_resources.fakes.base import JsonHandler, LocalServer


@dataclass
class Faults:
    throttle: float = 0.0  # share of creations answered 429
    create_error: float = 0.0  # share of creations answered 500 (nothing created)
    read_error: float = 0.0  # share of reads answered with read_error_status
    read_error_status: int = 503  # 503: the client retries it; 500: it does not
    failed: float = 0.0  # share of predictions that end "failed"
    failures_per_input: int | None = None  # at most this many failed predictions per input
    always_fail: frozenset[str] = frozenset()  # inputs (sha256 of the image) that always fail
    slow: float = 0.0  # share of predictions that take `slow_factor` x the latency
    slow_factor: float = 10.0
    retry_after: str = "1"
    opaque: bool = False  # cut-outs come back as the photo itself, with no transparency
    seed: int = 0


@dataclass
class _Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    created: float
    done_at: float
    fails: bool
    canceled: bool = False
    output: str | None = None


@dataclass
class Stats:
    creates: Counter[str] = field(default_factory=Counter)  # per input image sha256: paid
    failed: Counter[str] = field(default_factory=Counter)  # per input: predictions that failed
    throttled: int = 0
    create_errors: int = 0
    read_errors: int = 0
    cancels: int = 0


def _data_uri(text: str) -> bytes | None:
    """The bytes a ``data:`` URI carries, or None for any other address."""
    return base64.b64decode(text.split(",", 1)[1]) if text.startswith("data:") else None


def _input_bytes(image: str) -> bytes:
    """The input image: inline, or fetched from its URL."""
    data = _data_uri(image)
    return data if data is not None else httpx.get(image, timeout=30).content


def _digest(image: object) -> str:
    """sha256 of the input image: of its bytes for a data URI, else of the URL."""
    text = str(image)
    data = _data_uri(text)
    return hashlib.sha256(data if data is not None else text.encode()).hexdigest()


def _cutout(image: str) -> str:
    with Image.open(io.BytesIO(_input_bytes(image))) as im:
        rgb = np.asarray(im.convert("RGB"))
    alpha = (BorderColour().predict(rgb) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(buf, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _opaque(image: str) -> str:
    with Image.open(io.BytesIO(_input_bytes(image))) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _scene(image: str, seed: int) -> str:
    """A 'generated' scene the size of the input: a seeded two-colour gradient."""
    data = _input_bytes(image)
    with Image.open(io.BytesIO(data)) as im:
        width, height = im.size
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(40, 230, 3), rng.integers(40, 230, 3)
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    scene = np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(scene).save(buf, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


class FakeReplicate(LocalServer):
    def __init__(self, latency_s: float = 0.2, faults: Faults | None = None) -> None:
        self.latency_s = latency_s
        self.faults = faults or Faults()
        self.stats = Stats()
        self._predictions: dict[str, _Prediction] = {}
        super().__init__(self.faults.seed)

    def _view(self, p: _Prediction) -> dict[str, Any]:
        now = time.time()
        if p.canceled:
            status = "canceled"
        elif now < p.created + min(0.05, self.latency_s):
            status = "starting"
        elif now < p.done_at:
            status = "processing"
        else:
            status = "failed" if p.fails else "succeeded"
        if status == "succeeded" and p.output is None:
            prompt = p.input.get("bg_prompt") or p.input.get("prompt")
            image = str(p.input.get("image", ""))
            if prompt:
                p.output = _scene(image, int(p.input.get("seed") or 0))
            else:
                p.output = _opaque(image) if self.faults.opaque else _cutout(image)
        done = status in ("succeeded", "failed", "canceled")
        return {
            "id": p.id,
            "model": p.model,
            "version": p.version,
            "status": status,
            "input": {k: (v[:64] if isinstance(v, str) else v) for k, v in p.input.items()},
            "output": p.output if status == "succeeded" else None,
            "error": "CUDA out of memory (injected)" if status == "failed" else None,
            "logs": "",
            "data_removed": False,
            "metrics": {"predict_time": round(p.done_at - p.created, 3)} if done else {},
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(p.created)),
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"{self.url}/v1/predictions/{p.id}",
                "cancel": f"{self.url}/v1/predictions/{p.id}/cancel",
            },
        }

    def _create(
        self, model: str, version: str, body: dict[str, Any], prefer: str
    ) -> tuple[int, dict, dict]:
        extra = set(body) - {"version", "input", "webhook", "webhook_events_filter", "stream"}
        if extra:
            return 422, {"detail": f"unknown fields: {sorted(extra)}", "status": 422}, {}
        if self.roll(self.faults.throttle):
            self.stats.throttled += 1
            return (
                429,
                {
                    "title": "Request was throttled",
                    "status": 429,
                    "detail": "Request was throttled. Your rate limit resets in ~1s.",
                },
                {"Retry-After": self.faults.retry_after},
            )
        if self.roll(self.faults.create_error):
            self.stats.create_errors += 1
            return 500, {"title": "Internal Server Error", "status": 500, "detail": "injected"}, {}
        inputs = dict(body.get("input") or {})
        latency = self.latency_s * (self.faults.slow_factor if self.roll(self.faults.slow) else 1)
        digest = _digest(inputs.get("image"))
        fails = self.roll(self.faults.failed)
        cap = self.faults.failures_per_input
        with self._lock:
            if cap is not None and self.stats.failed[digest] >= cap:
                fails = False
            fails = fails or digest in self.faults.always_fail
            now = time.time()
            p = _Prediction(
                uuid.uuid4().hex[:20], model, version, inputs, now, now + latency, fails
            )
            self._predictions[p.id] = p
            self.stats.creates[digest] += 1
            self.stats.failed[digest] += fails
        if prefer.startswith("wait"):
            hold = float(prefer.split("=", 1)[1]) if "=" in prefer else 60.0
            time.sleep(max(0.0, min(p.done_at - time.time(), hold)))
        return 201, self._view(p), {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def _authorised(self) -> bool:
                if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                    self.send_json(
                        401,
                        {
                            "title": "Unauthenticated",
                            "status": 401,
                            "detail": "You did not pass an authentication token",
                        },
                    )
                    return False
                return True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                if not self._authorised():
                    return
                parts = self.path.strip("/").split("/")
                prefer = self.headers.get("Prefer") or ""
                if parts == ["v1", "predictions"]:
                    body = json.loads(raw or b"{}")
                    self.send_json(*fake._create("", str(body.get("version")), body, prefer))
                elif (
                    len(parts) == 5 and parts[:2] == ["v1", "models"] and parts[4] == "predictions"
                ):
                    body = json.loads(raw or b"{}")
                    self.send_json(*fake._create(f"{parts[2]}/{parts[3]}", "", body, prefer))
                elif (
                    len(parts) == 4 and parts[:2] == ["v1", "predictions"] and parts[3] == "cancel"
                ):
                    p = fake._predictions.get(parts[2])
                    if p is None:
                        self.send_json(404, {"detail": "Not found", "status": 404})
                        return
                    fake.stats.cancels += 1
                    if time.time() < p.done_at:
                        p.canceled = True
                    self.send_json(200, fake._view(p))
                else:
                    self.send_json(404, {"detail": "Not found", "status": 404})

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[:2] == ["v1", "predictions"]:
                    if fake.roll(fake.faults.read_error):
                        fake.stats.read_errors += 1
                        status = fake.faults.read_error_status
                        self.send_json(
                            status, {"detail": "injected", "status": status}, {"Retry-After": "0"}
                        )
                        return
                    p = fake._predictions.get(parts[2])
                    if p is None:
                        self.send_json(404, {"detail": "Not found", "status": 404})
                        return
                    self.send_json(200, fake._view(p))
                else:
                    self.send_json(404, {"detail": "Not found", "status": 404})

        return Handler


def main() -> None:
    """Serve the fake in its own process: `python -m imgpipe_resources.fakes.replicate_server`."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    fake = FakeReplicate(latency_s=args.latency)
    print(fake.url, flush=True)  # noqa: T201 - the parent process reads the URL from here
    fake.serve_forever()


if __name__ == "__main__":
    main()
