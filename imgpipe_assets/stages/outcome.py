"""What a stage made of one partition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """One partition's result: what was stored where, whether it was made or found, what
    it cost, a small preview, and the facts a person reads on the partition's page
    (plain values only: text, numbers, lists, mappings)."""

    status: str  # created, cached, already attached
    storage_key: str | None = None
    uri: str | None = None
    cost_usd: float = 0.0
    preview_jpeg: bytes | None = None
    preview_alt: str = "preview"
    facts: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float | None = None  # the runner times the stage when it does not
