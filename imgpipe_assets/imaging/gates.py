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
    max_holes: int = 40  # jewellery has holes (rings, links); hundreds mean a noisy mask
    warn_holes: int = 12


@dataclass(frozen=True)
class Verdict:
    gate: str
    outcome: str  # pass | warn | block
    value: float
    reason: str


def _grade(gate: str, value: float, block: bool, warn: bool, reason: str) -> Verdict:
    outcome = "block" if block else "warn" if warn else "pass"
    return Verdict(gate, outcome, round(float(value), 4), reason if outcome != "pass" else "")


@dataclass(frozen=True)
class Stats:
    """What the gates look at, measured on the whole frame's alpha (any resolution)."""

    coverage: float  # fraction of the frame that is subject
    edge_contact: float  # largest share of one frame edge the subject touches
    fragments: int  # separate pieces of some size
    holes: int  # enclosed see-through regions (inside a ring, between links)
    side: int  # the source photo's short side in pixels


def measure(alpha: np.ndarray, width: int, height: int) -> Stats:
    solid = alpha >= 0.5
    if not solid.any():
        return Stats(0.0, 0.0, 0, 0, min(width, height))
    edges = [solid[0].mean(), solid[-1].mean(), solid[:, 0].mean(), solid[:, -1].mean()]
    labels, _ = ndimage.label(solid)
    sizes = np.bincount(labels.ravel())[1:]
    fragments = int((sizes >= max(16, 0.001 * solid.sum())).sum())
    clear, n_clear = ndimage.label(~solid)
    border = np.unique(np.concatenate([clear[0], clear[-1], clear[:, 0], clear[:, -1]]))
    clear_sizes = np.bincount(clear.ravel(), minlength=n_clear + 1)
    clear_sizes[border] = 0
    clear_sizes[0] = 0
    holes = int((clear_sizes >= max(9, 0.0005 * solid.sum())).sum())
    return Stats(float(solid.mean()), float(max(edges)), fragments, holes, min(width, height))


def grade(stats: Stats, limits: GateLimits = GateLimits()) -> list[Verdict]:
    coverage, contact, side = stats.coverage, stats.edge_contact, stats.side
    fragments, holes = stats.fragments, stats.holes
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
        _grade(
            "holes",
            holes,
            holes > limits.max_holes,
            holes > limits.warn_holes,
            f"the mask has {holes} see-through holes",
        ),
    ]


def evaluate(
    alpha: np.ndarray, width: int, height: int, limits: GateLimits = GateLimits()
) -> list[Verdict]:
    return grade(measure(alpha, width, height), limits)


def blocking(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.outcome == "block"]
