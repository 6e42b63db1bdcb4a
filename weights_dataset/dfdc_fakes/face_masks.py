"""Soft masks and face geometry shared by the fake methods.

All masks are float32 arrays in [0, 1] over a region of interest (ROI) around the face box: the box
grown by a quarter of its size on each side (``face_roi``). Every mask is zero well inside the ROI's
border, so a method that only writes the ROI leaves the rest of the frame untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[float, float, float, float]
"""A face box ``(x1, y1, x2, y2)`` in pixel coordinates (detector-style: brows to chin)."""

# Where the five MTCNN landmarks (left eye, right eye, nose, left and right mouth corner) sit in an
# upright face box, as fractions of its width and height: the mean over the sample photos' faces.
CANONICAL_LANDMARKS = np.array([[0.31, 0.40], [0.69, 0.40], [0.50, 0.60], [0.35, 0.80], [0.65, 0.80]], np.float32)
MASK_SHAPES = ("ellipse", "rectangle", "polygon", "lower", "upper")


def landmarks_from_box(box: Box) -> np.ndarray:
    """(5, 2) landmark estimates for an upright face in ``box``, for when no detector landmarks exist."""
    x1, y1, x2, y2 = box
    return CANONICAL_LANDMARKS * np.float32([x2 - x1, y2 - y1]) + np.float32([x1, y1])


def face_roi(box: Box, height: int, width: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: ``box`` grown by a quarter of its size per side, inside the image."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    return (max(0, int(x1 - bw / 4)), max(0, int(y1 - bh / 4)),
            min(width, int(np.ceil(x2 + bw / 4))), min(height, int(np.ceil(y2 + bh / 4))))


def smoothstep(distance: np.ndarray, feather: float) -> np.ndarray:
    """1 where ``distance`` <= 1 - feather, 0 beyond 1 + feather, smooth between (a hard edge at feather 0)."""
    if feather <= 0:
        return (distance <= 1).astype(np.float32)
    ramp = np.clip((1 + feather - distance) / (2 * feather), 0, 1)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)


def ellipse_mask(shape: tuple[int, int], centre: tuple[float, float], axes: tuple[float, float], feather: float,
                 angle: float = 0.0) -> np.ndarray:
    """A feathered ellipse in closed form (the look of a blurred ellipse without a large blur kernel)."""
    yy, xx = np.ogrid[0:shape[0], 0:shape[1]]
    dx, dy = xx - centre[0], yy - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (dx * cos + dy * sin) / axes[0], (-dx * sin + dy * cos) / axes[1]
    return smoothstep(np.sqrt(u * u + v * v).astype(np.float32), feather)


def polygon_mask(shape: tuple[int, int], points: np.ndarray, blur: float) -> np.ndarray:
    """The filled convex hull of ``points``, its edge blurred by ``blur`` px (0: a hard edge)."""
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    return cv2.GaussianBlur(mask, (0, 0), blur) if blur > 0 else mask


def random_mask(shape: tuple[int, int], box: Box, rng: np.random.Generator) -> np.ndarray:
    """One of ``MASK_SHAPES`` around ``box`` (ROI coordinates), with a random size and edge softness.

    Real swaps differ in what they replace (the whole face, the inner face, the mouth region) and in
    how the edge is blended; varying both keeps a model from keying on one outline.
    """
    kind = MASK_SHAPES[int(rng.integers(len(MASK_SHAPES)))]
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    feather = float(rng.choice([0.0, rng.uniform(0.05, 0.35)], p=[0.25, 0.75]))
    blur = feather * 0.25 * min(bw, bh)
    if kind == "ellipse":
        return ellipse_mask(shape, (cx, cy), tuple(rng.uniform(0.35, 0.5, size=2) * (bw, bh)), feather, rng.uniform(-0.3, 0.3))
    if kind == "rectangle":
        half = rng.uniform(0.3, 0.45, size=2) * (bw, bh)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half + (cx, cy)
        return polygon_mask(shape, corners, blur)
    if kind == "polygon":
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=int(rng.integers(5, 10))))
        radii = rng.uniform(0.3, 0.5, size=(len(angles), 1)) * (bw, bh)
        return polygon_mask(shape, np.stack([np.cos(angles), np.sin(angles)], 1) * radii + (cx, cy), blur)
    landmarks = landmarks_from_box(box)
    part = landmarks[3:] if kind == "lower" else landmarks[:2]  # mouth corners or eyes
    centre = part.mean(0) + (0, (0.08 if kind == "lower" else 0) * bh)
    return ellipse_mask(shape, tuple(centre), (rng.uniform(0.3, 0.42) * bw, rng.uniform(0.14, 0.22) * bh), max(feather, 0.1))
