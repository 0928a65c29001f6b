"""Cut-out providers: the offline model by default, or a Replicate model."""

from __future__ import annotations

import base64
import io
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from PIL import Image
from pydantic import Field

from imgpipe_assets.imaging.backdrop import PLAIN, KeyLimits
from imgpipe_assets.imaging.decode import decode_rgba
from imgpipe_assets.imaging.pipeline import WORK_PX, Cutout, cut_out, cutout_from_alpha
from imgpipe_assets.imaging.segment import load_segmenter
from imgpipe_resources.db.predictions import Ledger, Work
from imgpipe_resources.replicate_models import PredictionFailed, ReplicateModels, output_bytes

# 851 Labs' background remover, pinned: a model's input schema changes between versions.
DEFAULT_CUTOUT_MODEL = (
    "851-labs/background-remover:a029dff38972b5fda4ec5d75d7d1cd25aeff621d2cf4946a41055d7db66b80bc"
)


@dataclass(frozen=True)
class CutoutRequest:
    """What a provider may need besides the bytes: who the photo is, where it can be read
    from (a presigned URL), and the ledger that keeps paid work from being paid twice."""

    sku: str
    sha256: str
    source_uri: str | None
    ledger: Ledger
    work_px: int = WORK_PX  # the cut-out's long side: what the largest theme needs


class SegmentationProvider(dg.ConfigurableResource, ABC):
    """Turns a source photo into a cut-out (mask plus measurements)."""

    backdrop_key: bool = Field(
        default=True,
        description="IMGPIPE_BACKDROP_KEY: on plain studio backdrops, the backdrop key makes "
        "the cut-out from the model's answer (holes opened, thin parts kept, shadows left out)",
    )

    @property
    def plain(self) -> KeyLimits | None:
        return PLAIN if self.backdrop_key else None

    @abstractmethod
    def cut_out(self, data: bytes, request: CutoutRequest) -> Cutout: ...

    @property
    def concurrency(self) -> int:
        """Cut-outs one step works on at once (remote models hide their latency)."""
        return 1


class LocalSegmenter(SegmentationProvider):
    """u2netp on onnxruntime, on this machine; no account, no network, no cost.

    Falls back to a border-colour segmenter (and says so in the logs and metadata) when the
    weights are missing, unless `allow_fallback` is false.
    """

    models_dir: str = Field(description="Directory holding u2netp.onnx (imgpipe models fetch)")
    allow_fallback: bool = True
    flip_tta: bool = Field(
        default=False,
        description="IMGPIPE_SEGMENTER_FLIP: a mirrored second opinion (slightly better masks, "
        "twice the model time)",
    )
    workers: int = Field(
        default=2,
        description="IMGPIPE_CUTOUT_WORKERS: photos one step cuts out at once. The model runs "
        "one photo at a time on every core; the backdrop key is mostly one core's work, so a "
        "second photo keys while the next one is in the model. Each holds a photo's working "
        "memory (about 1.3 GB at 50 MP).",
    )

    @property
    def concurrency(self) -> int:
        return self.workers

    def cut_out(self, data: bytes, request: CutoutRequest) -> Cutout:
        segmenter = load_segmenter(Path(self.models_dir), self.allow_fallback, self.flip_tta)
        return cut_out(data, segmenter, work_px=request.work_px, plain=self.plain)


class ReplicateSegmenter(SegmentationProvider):
    """A background-removal model on Replicate (pinned version), paid once per photo.

    The model's output is a cut-out PNG; its alpha channel becomes the mask, and on a plain
    studio backdrop it goes through the same backdrop key as the local model's (holes
    opened, thin parts kept, colour decontaminated), so a paid cut-out is as good as it can
    be. The photo goes to Replicate as its presigned storage URL, or inline as a data URI
    where the store has no public URL (local files).
    """

    replicate: ReplicateModels
    model_ref: str = Field(
        default=DEFAULT_CUTOUT_MODEL,
        description="REPLICATE_SEGMENTATION_MODEL (owner/name:version)",
    )
    image_input: str = "image"
    extra_input: dict[str, Any] = Field(default_factory=dict)
    parallel: int = Field(default=8, description="REPLICATE_CONCURRENCY: cut-outs at once")

    @property
    def concurrency(self) -> int:
        return self.parallel

    def cut_out(self, data: bytes, request: CutoutRequest) -> Cutout:
        rgb, own_alpha = decode_rgba(data)
        if own_alpha is not None:  # already cut out: nothing to pay for
            alpha = own_alpha.astype(np.float32) / 255.0
            return cutout_from_alpha(rgb, alpha, "source-alpha", work_px=request.work_px)
        # The store's public URL, or the bytes inline where it has none (local files).
        source = (
            request.source_uri or f"data:{_mime(data)};base64,{base64.b64encode(data).decode()}"
        )
        work = Work(
            key=f"mask:{request.sha256}:{self.model_ref}",
            stage="mask",
            model=self.model_ref,
            sku=request.sku,
            sha256=request.sha256,
        )
        outcome = self.replicate.run(
            work, {self.image_input: source, **self.extra_input}, request.ledger
        )
        returned = _alpha_of(output_bytes(outcome.output), rgb.shape[1], rgb.shape[0])
        if returned is None or float(returned.min()) > 0.98:
            raise PredictionFailed(
                f"the model ({self.model_ref}) returned no transparency: its output is an "
                "opaque image, not a cut-out (check REPLICATE_SEGMENTATION_MODEL and its "
                "output format)",
                cost_usd=outcome.cost_usd,
            )
        return cutout_from_alpha(
            rgb,
            returned,
            self.model_ref,
            outcome.cost_usd,
            outcome.prediction_id,
            request.work_px,
            plain=self.plain,
        )


def _mime(data: bytes) -> str:
    return "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


def _alpha_of(png: bytes, width: int, height: int) -> np.ndarray | None:
    """The alpha of a provider's cut-out, at the source photo's size: its alpha channel, or
    the image itself where the model answers with a grey mask; None for a colour image
    without transparency (not a cut-out at all)."""
    try:
        with Image.open(io.BytesIO(png)) as opened:
            opened.load()
            im: Image.Image = opened
            if im.mode == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if "A" in im.getbands():
                alpha = im.getchannel("A")
            elif im.mode in ("L", "1", "I", "I;16", "F"):
                alpha = im.convert("L")
            else:
                return None
    except (OSError, ValueError) as exc:
        raise PredictionFailed(f"the model's output is not a readable image: {exc}") from None
    if alpha.size != (width, height):
        alpha = alpha.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(alpha, dtype=np.float32) / 255.0
