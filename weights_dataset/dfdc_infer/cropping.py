"""Face cropping: one square crop per chosen face, enlarged around the detector's box.

Training imports these very functions (face extraction), so train-time and test-time crops are
the same geometry and the same resampling and cannot drift apart. Frames on the GPU (the
``nvdec`` reader) are cropped and resized there with the torch equivalents (area averaging when
shrinking, bilinear when enlarging); tests bound their difference from the OpenCV path.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .video_reading import Frames, resize_frames


def select_faces(detections: np.ndarray, all_faces: bool = False) -> np.ndarray:
    """The faces to score in one frame: the largest box (by area), or every box.

    ``detections`` is (K, 5) ``[x1, y1, x2, y2, score]``; the result keeps that layout, (0, 5) for
    no face. The largest face is the write-ups' choice: in DFDC the manipulated face is nearly
    always the main subject.
    """
    if len(detections) == 0 or all_faces:
        return detections
    areas = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
    return detections[[int(np.argmax(areas))]]


def square_crop_box(box: np.ndarray, frame_width: int, frame_height: int, margin: float = 1.3) -> tuple[int, int, int, int]:
    """Integer ``(x1, y1, x2, y2)`` of a square around ``box``, ``margin`` times its longer side.

    The square keeps the face centred and is shifted (not cut) to lie inside the frame, so the crop
    stays square and undistorted; only a square larger than the frame's shorter side is shrunk to it.
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = min(max(x2 - x1, y2 - y1) * margin, frame_width, frame_height)
    side = max(int(round(side)), 1)
    left = int(round((x1 + x2) / 2 - side / 2))
    top = int(round((y1 + y2) / 2 - side / 2))
    left = min(max(left, 0), frame_width - side)
    top = min(max(top, 0), frame_height - side)
    return left, top, left + side, top + side


def crop_face(frame: Frames, box: np.ndarray, size: int, margin: float = 1.3) -> Frames:
    """(size, size, 3) uint8 crop of one (H, W, 3) ``frame`` around ``box`` (see ``square_crop_box``),
    of the frame's own type (numpy or torch, on the frame's device).

    Area averaging when shrinking (no aliasing on 1080p faces), bilinear when enlarging small faces.
    """
    height, width = frame.shape[:2]
    left, top, right, bottom = square_crop_box(box, width, height, margin)
    patch = frame[top:bottom, left:right]
    shrink = patch.shape[0] > size
    if isinstance(patch, torch.Tensor):
        return resize_frames(patch[None], (size, size), "area" if shrink else "bilinear")[0]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def crop_frames(
    frames: Frames, detections: list[np.ndarray], size: int, margin: float = 1.3, all_faces: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Crops for a whole video sample: ``(crops (M, size, size, 3) uint8, frame_of_crop (M,) int)``.

    ``frame_of_crop[i]`` is the position in ``frames`` that crop ``i`` came from, so callers can
    tell which frames had faces.
    """
    crops: list[Frames] = []
    owners: list[int] = []
    for position, (frame, frame_detections) in enumerate(zip(frames, detections)):
        for box in select_faces(frame_detections, all_faces):
            crops.append(crop_face(frame, box, size, margin))
            owners.append(position)
    if not crops:
        return np.zeros((0, size, size, 3), dtype=np.uint8), np.zeros(0, dtype=np.int64)
    stacked = torch.stack(crops).cpu().numpy() if isinstance(crops[0], torch.Tensor) else np.stack(crops)
    return stacked, np.asarray(owners, dtype=np.int64)
