"""Cut-out providers: the offline model by default."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import dagster as dg
from pydantic import Field

from imgpipe_assets.imaging.pipeline import Cutout, cut_out
from imgpipe_assets.imaging.segment import load_segmenter


class SegmentationProvider(dg.ConfigurableResource, ABC):
    """Turns a source photo into a cut-out (mask plus measurements)."""

    @abstractmethod
    def cut_out(self, data: bytes) -> Cutout: ...

    @property
    @abstractmethod
    def model(self) -> str: ...

    @property
    def cost_per_image_usd(self) -> float:
        return 0.0


class LocalSegmenter(SegmentationProvider):
    """u2netp on onnxruntime, on this machine; no account, no network, no cost.

    Falls back to a border-colour segmenter (and says so in the logs and metadata) when the
    weights are missing, unless `allow_fallback` is false.
    """

    models_dir: str = Field(description="Directory holding u2netp.onnx (imgpipe models fetch)")
    allow_fallback: bool = True

    def cut_out(self, data: bytes) -> Cutout:
        return cut_out(data, load_segmenter(Path(self.models_dir), self.allow_fallback))

    @property
    def model(self) -> str:
        return load_segmenter(Path(self.models_dir), self.allow_fallback).name
