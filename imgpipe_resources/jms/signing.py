"""How 3JMS signs webhooks, and how imgpipe checks them.

Headers:
  X-3JMS-Timestamp: Unix seconds when the delivery was signed
  X-3JMS-Delivery:  a unique delivery id (replays of one id are acknowledged, not re-recorded)
  X-3JMS-Signature: sha256=<hex>, hex = HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body)

Any of several secrets may match (rotation without downtime). Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence

from imgpipe_assets.errors import MissingSignature, SignatureError, StaleTimestamp

TIMESTAMP = "X-3JMS-Timestamp"
DELIVERY = "X-3JMS-Delivery"
SIGNATURE = "X-3JMS-Signature"
PREFIX = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def sign(
    body: bytes, secret: str, *, timestamp: int | None = None, delivery_id: str | None = None
) -> dict[str, str]:
    """The three headers for ``body``, as 3JMS sends them."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        TIMESTAMP: ts,
        DELIVERY: delivery_id or str(uuid.uuid4()),
        SIGNATURE: signature(secret, ts, body),
    }


def verify(
    headers: Mapping[str, str | None],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> str:
    """Check a delivery; return its delivery id or raise a SignatureError saying why."""
    if not secrets:
        raise SignatureError("no webhook secret is configured (JMS_WEBHOOK_SECRET)")
    for name in (TIMESTAMP, DELIVERY, SIGNATURE):
        if not headers.get(name):
            raise MissingSignature(f"header {name} is required")
    ts_raw, delivery, sent = (
        str(headers[TIMESTAMP]),
        str(headers[DELIVERY]),
        str(headers[SIGNATURE]),
    )
    if len(delivery) > 128:
        raise SignatureError(f"header {DELIVERY} is longer than 128 characters")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise SignatureError(f"header {TIMESTAMP} must be Unix seconds") from None
    skew = abs((time.time() if now is None else now) - ts)
    if skew > tolerance_s:
        raise StaleTimestamp(
            f"timestamp is {skew:.0f} s from now; the tolerance is {tolerance_s} s"
        )
    if not sent.startswith(PREFIX):
        raise SignatureError(f"header {SIGNATURE} must start with {PREFIX}")
    # Every secret is tried, so the time taken does not tell which one nearly matched.
    matches = [hmac.compare_digest(signature(s, ts_raw, body), sent) for s in secrets]
    if not any(matches):
        raise SignatureError("signature does not match the body")
    return delivery
