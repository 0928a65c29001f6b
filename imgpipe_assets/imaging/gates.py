"""Quality gates on a cut-out: what must hold before a composite may reach the shop.

Each gate yields a verdict: ``pass``; ``review`` (doubtful: the composites are made but wait
for a person instead of publishing themselves, with the gate's reason); or ``block`` (the
image stops before compositing, with the gate's name as the reason).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class GateLimits:
    min_coverage: float = 0.0005  # below: nothing was found
    review_low_coverage: float = 0.005  # and spread over less than review_low_spread
    review_low_spread: float = 0.05  # of the frame (a fine chain covers little, widely)
    max_coverage: float = 0.95  # above: the "cut-out" is the whole frame
    review_high_coverage: float = 0.85
    # share of a frame edge the subject touches: a watch's bracelet may run off the frame
    # (a person decides); a third of an edge is a product cut in half
    max_edge_contact: float = 0.3
    review_edge_contact: float = 0.01
    min_side_px: int = 300  # below: too small to publish
    review_side_px: int = 500  # enlarging is judged per theme, against its canvas
    max_fragments: int = 12  # separate pieces (beyond a small gap): a shattered mask
    review_fragments: int = 4
    max_holes: int = 60  # jewellery has holes (rings, links, pearls); hundreds mean noise
    review_holes: int = 40
    # Doubt: the backdrop key dropped much of what the model is sure of (beyond the holes
    # it is there to open) while little of what it kept is unmistakably product; or the
    # product is mostly see-through (a haze of alpha, not an object).
    min_agreement: float = 0.5
    max_semi_transparent: float = 0.5


@dataclass(frozen=True)
class Verdict:
    gate: str
    outcome: str  # pass | review | block
    value: float
    reason: str


def _grade(gate: str, value: float, block: bool, review: bool, reason: str) -> Verdict:
    outcome = "block" if block else "review" if review else "pass"
    return Verdict(gate, outcome, round(float(value), 4), reason if outcome != "pass" else "")


@dataclass(frozen=True)
class Stats:
    """What the gates look at, measured on the whole frame's alpha (any resolution)."""

    coverage: float  # fraction of the frame that is subject
    edge_contact: float  # largest share of one frame edge the subject touches
    fragments: int  # separate pieces of some size, pieces a small gap apart counted as one
    holes: int  # enclosed see-through regions (inside a ring, between links)
    side: int  # the source photo's short side in pixels
    semi_transparent: float = 0.0  # share of the product's alpha that is neither 0 nor 1
    model_agreement: float | None = None  # of the model's sure product the key kept
    key_certainty: float | None = None  # of the key's product unmistakably not backdrop
    keyed: bool = False  # cut out by the backdrop key (a plain backdrop)
    holes_opened: int = 0  # see-through regions the key opened
    shadow_share: float = 0.0  # of the crop that is the photo's own shadow, left out
    spread: float = 1.0  # of the frame that the subject's bounding box spans


def measure(alpha: np.ndarray, width: int, height: int) -> Stats:
    solid = alpha >= 0.5
    if not solid.any():
        return Stats(0.0, 0.0, 0, 0, min(width, height))
    edges = [solid[0].mean(), solid[-1].mean(), solid[:, 0].mean(), solid[:, -1].mean()]
    # Pearls on a strand, the links of a bracelet and a chain's links are separate pieces a
    # pixel or two apart: one product. Pieces further apart than 1 % of the frame count.
    gap = max(1, round(0.005 * max(alpha.shape)))
    labels, _ = ndimage.label(ndimage.binary_dilation(solid, iterations=gap))
    sizes = np.bincount(labels[solid])[1:]
    fragments = int((sizes >= max(16, 0.001 * solid.sum())).sum())
    rows = np.flatnonzero(solid.any(axis=1))
    cols = np.flatnonzero(solid.any(axis=0))
    spread = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / solid.size
    clear, n_clear = ndimage.label(~solid)
    border = np.unique(np.concatenate([clear[0], clear[-1], clear[:, 0], clear[:, -1]]))
    clear_sizes = np.bincount(clear.ravel(), minlength=n_clear + 1)
    clear_sizes[border] = 0
    clear_sizes[0] = 0
    holes = int((clear_sizes >= max(9, 0.0005 * solid.sum())).sum())
    return Stats(
        float(solid.mean()),
        float(max(edges)),
        fragments,
        holes,
        min(width, height),
        spread=round(float(spread), 4),
    )


def with_alpha_shape(
    stats: Stats,
    alpha: np.ndarray,
    model_agreement: float | None,
    key_certainty: float | None = None,
    keyed: bool = False,
    holes_opened: int = 0,
    shadow_share: float = 0.0,
) -> Stats:
    """``stats`` with what the cut-out's own alpha (any crop) says: how much of it is
    see-through, and how the key's answer compares with the model's."""
    mass = float(alpha.sum())
    partial = float(alpha[(alpha > 0.1) & (alpha < 0.9)].sum())
    return replace(
        stats,
        semi_transparent=round(partial / mass, 4) if mass > 0 else 0.0,
        model_agreement=None if model_agreement is None else round(model_agreement, 4),
        key_certainty=None if key_certainty is None else round(key_certainty, 4),
        keyed=keyed,
        holes_opened=holes_opened,
        shadow_share=round(shadow_share, 4),
    )


def agreement(model: np.ndarray, alpha: np.ndarray, holes: np.ndarray) -> float:
    """How much of what the model is sure is product the backdrop key kept (1 = all of it).

    The key exists to open the holes a model fills and to keep the thin parts it cannot
    see, so lit backdrop inside the model's subject (a ring's inside) does not count
    against it, and neither does what it found beyond the model's subject. What counts is
    the model's confident product that the key called backdrop although it is not the
    backdrop's colour (``unlike_backdrop``: shadows, or a white product's shaded faces on
    white paper taken for shadows)."""
    sure_product = model >= 0.9
    if not sure_product.any():
        return 1.0
    lost = sure_product & (alpha < 0.5) & ~ndimage.binary_dilation(holes, iterations=3)
    return float(1.0 - lost.sum() / sure_product.sum())


def key_failed(stats: Stats, limits: GateLimits = GateLimits()) -> bool:
    """The backdrop key and the model disagree and the key has nothing to show for itself."""
    agree = 1.0 if stats.model_agreement is None else stats.model_agreement
    certain = 1.0 if stats.key_certainty is None else stats.key_certainty
    return agree < limits.min_agreement and certain < limits.min_agreement


def grade(stats: Stats, limits: GateLimits = GateLimits()) -> list[Verdict]:
    coverage, contact, side = stats.coverage, stats.edge_contact, stats.side
    fragments, holes = stats.fragments, stats.holes
    agree = 1.0 if stats.model_agreement is None else stats.model_agreement
    return [
        _grade(
            "coverage",
            coverage,
            coverage < limits.min_coverage or coverage > limits.max_coverage,
            (coverage < limits.review_low_coverage and stats.spread < limits.review_low_spread)
            or coverage > limits.review_high_coverage,
            f"subject covers {coverage:.1%} of the photo",
        ),
        _grade(
            "edge_contact",
            contact,
            contact > limits.max_edge_contact,
            contact > limits.review_edge_contact,
            f"subject touches {contact:.1%} of a frame edge: the product may be cut off",
        ),
        _grade(
            "resolution",
            side,
            side < limits.min_side_px,
            side < limits.review_side_px,
            f"the photo's short side is {side} px",
        ),
        _grade(
            "fragments",
            fragments,
            fragments > limits.max_fragments,
            fragments > limits.review_fragments,
            f"the mask has {fragments} separate pieces",
        ),
        _grade(
            "holes",
            holes,
            holes > limits.max_holes,
            holes > limits.review_holes,
            f"the mask has {holes} see-through holes",
        ),
        _grade(
            "agreement",
            agree,
            False,
            key_failed(stats, limits),
            f"the backdrop key kept {agree:.0%} of what the model sees as the product, and "
            f"little of it is unmistakably product: the model's cut-out is used",
        ),
        _grade(
            "transparency",
            stats.semi_transparent,
            False,
            stats.semi_transparent > limits.max_semi_transparent,
            f"{stats.semi_transparent:.0%} of the cut-out is semi-transparent: a haze, not "
            "a product",
        ),
    ]


def evaluate(
    alpha: np.ndarray, width: int, height: int, limits: GateLimits = GateLimits()
) -> list[Verdict]:
    return grade(measure(alpha, width, height), limits)


def blocking(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if v.outcome == "block"]


def doubtful(verdicts: list[Verdict]) -> list[Verdict]:
    """Verdicts that send the image's composites to a person instead of the shop."""
    return [v for v in verdicts if v.outcome == "review"]
