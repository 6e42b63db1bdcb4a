"""Face cropping: which faces of a frame are scored, and how each box becomes a model-input crop.

A crop geometry (``CROP_GEOMETRIES``, chosen by ``config.crop_geometry``) is two steps:
``region`` picks the frame pixels around a face box, ``fit`` turns them into a size x size crop.

- ``square`` (the ``seed`` preset): a square of ``crop_margin`` x the box's longer side, shifted
  (not cut) to stay inside the frame, resized to the crop size.
- ``dfdc-1st`` (the DFDC 1st place's kernel): the box, truncated to integers, widened by a third of
  its width left and right and a third of its height above and below, cut at the frame's edges;
  resized keeping its aspect so the longer side is the crop size (INTER_AREA when shrinking,
  INTER_CUBIC when enlarging) and centred on a black square.

Training imports these very functions (face extraction), so train-time and test-time crops are
the same geometry and the same resampling and cannot drift apart; a model can be trained for
either geometry. Frames on the GPU (the ``nvdec`` reader) are cut there; ``square`` also resizes
there (area averaging when shrinking, bilinear when enlarging; tests bound its difference from
OpenCV), ``dfdc-1st`` copies the cut patch to the host and resizes it with OpenCV, as its
reference does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch

from .registry import Registry
from .video_reading import Frames, frames_to_numpy, resize_frames

Region = tuple[int, int, int, int]
"""Integer ``(left, top, right, bottom)`` frame pixels of a crop; right and bottom exclusive."""


@dataclass(frozen=True)
class CropGeometry:
    """How a face box becomes a crop: ``region(box, width, height, margin)`` then ``fit(patch, size)``."""

    region: Callable[[np.ndarray, int, int, float], Region]
    fit: Callable[[Frames, int], Frames]


CROP_GEOMETRIES: Registry[CropGeometry] = Registry("crop geometry")


def select_faces(detections: np.ndarray, all_faces: bool = False) -> np.ndarray:
    """The faces to score in one frame: the largest box (by area), or every box, largest first.

    ``detections`` is (K, 5) ``[x1, y1, x2, y2, score]``; the result keeps that layout, (0, 5) for
    no face. The largest face is this product's default (in DFDC the manipulated face is nearly
    always the main subject; a background face only dilutes the mean). Every face, largest first,
    is the 1st place's choice and order (facenet-pytorch's ``select_largest``), which decides the
    faces a crop cap keeps.
    """
    if len(detections) == 0:
        return detections
    areas = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
    if not all_faces:
        return detections[[int(np.argmax(areas))]]
    return detections[np.argsort(-areas, kind="stable")]


def square_crop_box(box: np.ndarray, frame_width: int, frame_height: int, margin: float = 1.3, drop: float = 0.0) -> Region:
    """Integer ``(x1, y1, x2, y2)`` of a square around ``box``, ``margin`` times its longer side.

    The square keeps the face centred (its centre ``drop`` x its side below the box's centre) and is
    shifted (not cut) to lie inside the frame, so the crop stays square and undistorted; only a
    square larger than the frame's shorter side is shrunk to it.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = min(max(x2 - x1, y2 - y1) * margin, frame_width, frame_height)
    side = max(int(round(side)), 1)
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 + drop * side - side / 2))
    left = min(max(left, 0), frame_width - side)
    top = min(max(top, 0), frame_height - side)
    return left, top, left + side, top + side


def resize_square(patch: Frames, size: int) -> Frames:
    """Any patch -> (size, size, 3): area averaging when shrinking (no aliasing on 1080p faces),
    bilinear when enlarging small faces; on the patch's device for torch."""
    shrink = patch.shape[0] > size
    if isinstance(patch, torch.Tensor):
        return resize_frames(patch[None], (size, size), "area" if shrink else "bilinear")[0]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def widened_box(box: np.ndarray, frame_width: int, frame_height: int, margin: float = 0.0) -> Region:
    """The 1st place's region: the box truncated to integers (``int()``, toward zero), widened by
    ``width // 3`` left and right and ``height // 3`` above and below, cut at the frame's edges.
    ``margin`` is not used (the widening is fixed)."""
    x1, y1, x2, y2 = (int(v) for v in box[:4])
    pad_x, pad_y = (x2 - x1) // 3, (y2 - y1) // 3
    return max(x1 - pad_x, 0), max(y1 - pad_y, 0), min(x2 + pad_x, frame_width), min(y2 + pad_y, frame_height)


def fit_isotropic(patch: Frames, size: int) -> np.ndarray:
    """The 1st place's fit: resize so the longer side is ``size`` (aspect kept, the shorter side
    truncated to an integer; INTER_AREA when shrinking, INTER_CUBIC when enlarging), then centre on
    a black size x size square. Always on the host, with OpenCV, like its reference."""
    patch = frames_to_numpy(patch)
    height, width = patch.shape[:2]
    if max(width, height) != size:
        scale = size / max(width, height)
        shape = (size, max(int(height * scale), 1)) if width > height else (max(int(width * scale), 1), size)
        patch = cv2.resize(patch, shape, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    patch = patch[:size, :size]
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - patch.shape[0]) // 2, (size - patch.shape[1]) // 2
    canvas[top : top + patch.shape[0], left : left + patch.shape[1]] = patch
    return canvas


DEEPFAKE_FACES_FRAMING = {"margin": 0.90, "drop": 0.043}
"""How Kaggle's "deepfake-faces" crops frame a face, in our MTCNN's terms (``python -m dfdc_train.framing`` on 300
random crops of the real DFDC set, 281 with a face found): the crop's side is 0.90 x the box's longer side (the box is
1.108 crop sides tall, 0.91 wide) and its centre sits 0.043 crop sides below the box's centre (across: 0.013, left as
is). The ``deepfake-faces`` geometry and preset cut crops so, for models trained on that set."""


def deepfake_faces_box(box: np.ndarray, frame_width: int, frame_height: int, margin: float = 0.90) -> Region:
    """The ``square`` region moved down by ``DEEPFAKE_FACES_FRAMING``'s drop: the framing of the deepfake-faces crops."""
    return square_crop_box(box, frame_width, frame_height, margin, DEEPFAKE_FACES_FRAMING["drop"])


CROP_GEOMETRIES.add("square", CropGeometry(region=square_crop_box, fit=resize_square))
CROP_GEOMETRIES.add("deepfake-faces", CropGeometry(region=deepfake_faces_box, fit=resize_square))
CROP_GEOMETRIES.add("dfdc-1st", CropGeometry(region=widened_box, fit=fit_isotropic))


def crop_face(frame: Frames, box: np.ndarray, size: int, margin: float = 1.3, geometry: str = "square") -> Frames | None:
    """(size, size, 3) uint8 crop of one (H, W, 3) ``frame`` around ``box`` with ``geometry``, of
    the frame's own type for ``square`` (numpy, or torch on the frame's device), numpy for
    ``dfdc-1st``; None when the region is empty (a degenerate box)."""
    shape = CROP_GEOMETRIES.get(geometry)
    height, width = frame.shape[:2]
    left, top, right, bottom = shape.region(box, width, height, margin)
    if right <= left or bottom <= top:
        return None
    return shape.fit(frame[top:bottom, left:right], size)


def crop_frames(
    frames: Frames, detections: list[np.ndarray], size: int, margin: float = 1.3, all_faces: bool = False,
    geometry: str = "square", max_crops: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops for a whole video sample: ``(crops (M, size, size, 3) uint8, frame_of_crop (M,) int)``,
    frame by frame, faces in ``select_faces`` order, at most ``max_crops`` (the first ones).

    ``frame_of_crop[i]`` is the position in ``frames`` that crop ``i`` came from, so callers can
    tell which frames had faces.
    """
    crops: list[Frames] = []
    owners: list[int] = []
    for position, (frame, frame_detections) in enumerate(zip(frames, detections)):
        for box in select_faces(frame_detections, all_faces):
            if max_crops is not None and len(crops) >= max_crops:
                break
            crop = crop_face(frame, box, size, margin, geometry)
            if crop is not None:
                crops.append(crop)
                owners.append(position)
    if not crops:
        return np.zeros((0, size, size, 3), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    on_device = all(isinstance(crop, torch.Tensor) for crop in crops)
    stacked = torch.stack(crops).cpu().numpy() if on_device else np.stack([frames_to_numpy(crop) for crop in crops])
    return stacked, np.asarray(owners, dtype=np.int64)
