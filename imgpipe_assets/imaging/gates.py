"""Quality gates on a cut-out: what must hold before a composite may reach the shop.

Each gate yields a verdict: ``pass``, ``warn`` (borderline: published, flagged) or ``block``
(the image stops before compositing, with the gate's name as the reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class GateLimits:
    min_coverage: float = 0.005  # below: nothing was found
    warn_low_coverage: float = 0.02
    max_coverage: float = 0.95  # above: the "cut-out" is the whole frame
    warn_high_coverage: float = 0.85
    max_edge_contact: float = 0.08  # share of a frame edge the subject may touch (cut off)
    warn_edge_contact: float = 0.01
    min_side_px: int = 300  # below: too small to publish
    warn_side_px: int = 800
    max_fragments: int = 12  # separate pieces: a shattered mask
    warn_fragments: int = 4


@dataclass(frozen=True)
class Verdict:
    gate: str
    outcome: str  # pass | warn | block
    value: float
    reason: str


def _grade(gate: str, value: float, block: bool, warn: bool, reason: str) -> Verdict:
    outcome = "block" if block else "warn" if warn else "pass"
    return Verdict(gate, outcome, round(float(value), 4), reason if outcome != "pass" else "")


def evaluate(
    alpha: np.ndarray, width: int, height: int, limits: GateLimits = GateLimits()
) -> list[Verdict]:
    solid = alpha >= 0.5
    coverage = float(solid.mean())
    edges = [solid[0].mean(), solid[-1].mean(), solid[:, 0].mean(), solid[:, -1].mean()]
    contact = float(max(edges))
    labels, count = ndimage.label(solid)
    sizes = np.bincount(labels.ravel())[1:] if count else np.array([])
    fragments = int((sizes >= max(16, 0.001 * solid.sum())).sum()) if count else 0
    side = min(width, height)
    return [
        _grade(
            "coverage",
            coverage,
            coverage < limits.min_coverage or coverage > limits.max_coverage,
            coverage < limits.warn_low_coverage or coverage > limits.warn_high_coverage,
            f"subject covers {coverage:.1%} of the photo",
        ),
        _grade(
            "edge_contact",
            contact,
            contact > limits.max_edge_contact,
            contact > limits.warn_edge_contact,
            f"subject touches {contact:.1%} of a frame edge: the product may be cut off",
        ),
        _grade(
            "resolution",
            side,
            side < limits.min_side_px,
            side < limits.warn_side_px,
            f"the photo's short side is {side} px",
        ),
        _grade(
            "fragments",
            fragments,
            fragments > limits.max_fragments,
            fragments > limits.warn_fragments,
            f"the mask has {fragments} separate pieces",
        ),
    ]


def blocking(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.outcome == "block"]
