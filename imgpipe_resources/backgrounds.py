"""Generative theme backgrounds: a model paints a scene around the framed cut-out.

The model receives the product already framed on the theme's canvas (transparent around
it), so the scene it paints fits where the composite will put the product; the composite
then lays the original product pixels back on top, so no model ever changes its colours.
"""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import dagster as dg
from pydantic import Field

from imgpipe_assets.errors import GenerativeUnavailable
from imgpipe_resources.db.predictions import Ledger, Work
from imgpipe_resources.replicate_models import ReplicateModels, output_bytes

# Bria's background generator: the cut-out plus a prompt. Pin a version in the theme file.
DEFAULT_BACKGROUND_MODEL = "bria/generate-background"


@dataclass(frozen=True)
class GenerationRequest:
    sku: str
    sha256: str
    theme: str
    fingerprint: str
    framed_png: bytes  # the cut-out on a transparent canvas of the theme's size
    framed_uri: str | None  # where the model can fetch it (https), else sent inline
    spec: dict[str, Any]  # the theme's background section
    ledger: Ledger


@dataclass(frozen=True)
class Generated:
    image: bytes
    model: str
    prediction_id: str
    cost_usd: float


class BackgroundGenerator(dg.ConfigurableResource, ABC):
    """Paints backgrounds for themes whose background style is ``generative``."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Generated: ...


class NoBackgroundGenerator(BackgroundGenerator):
    """The embedded default: generative themes need a model provider."""

    def generate(self, request: GenerationRequest) -> Generated:
        raise GenerativeUnavailable(
            f"theme {request.theme!r} is generative: set IMGPIPE_BACKGROUNDS=replicate (or "
            "IMGPIPE_ENV=prod) and REPLICATE_API_TOKEN"
        )


class ReplicateBackgrounds(BackgroundGenerator):
    """Generative backgrounds on Replicate, paid once per (image, theme version)."""

    replicate: ReplicateModels
    default_model: str = Field(default=DEFAULT_BACKGROUND_MODEL)

    def generate(self, request: GenerationRequest) -> Generated:
        spec = request.spec
        model = str(spec.get("model") or self.default_model)
        names = {
            "image": "image",
            "prompt": "bg_prompt",
            "negative_prompt": "negative_prompt",
            "seed": "seed",
            **dict(spec.get("inputs") or {}),
        }
        image = request.framed_uri or (
            "data:image/png;base64," + base64.b64encode(request.framed_png).decode()
        )
        inputs: dict[str, Any] = {names["image"]: image, names["prompt"]: str(spec["prompt"])}
        if spec.get("negative_prompt"):
            inputs[names["negative_prompt"]] = str(spec["negative_prompt"])
        if spec.get("seed") is not None:
            inputs[names["seed"]] = int(spec["seed"])
        work = Work(
            key=f"background:{request.sha256}:{request.theme}:{request.fingerprint}:{model}",
            stage="background",
            model=model,
            sku=request.sku,
            sha256=request.sha256,
            theme=request.theme,
        )
        outcome = self.replicate.run(work, inputs, request.ledger)
        return Generated(
            output_bytes(outcome.output), model, outcome.prediction_id, outcome.cost_usd
        )
