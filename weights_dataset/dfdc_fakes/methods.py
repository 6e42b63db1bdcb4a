"""The fake methods: each turns the face in ``box`` of an RGB image into a manipulated one.

    METHODS.get("face-swap")(image, box, rng, donor) -> a new image, same shape and dtype

- ``self-blend``: the face blended onto itself after a small colour, scale and texture change,
  through a feathered ellipse (self-blended images, Shiohara & Yamasaki, CVPR 2022);
- ``face-swap``: another person's face (``donor``) aligned to the box, colour-matched to the target
  skin (Reinhard transfer in Lab) and blended in (the classic swap pipeline's traces);
- ``part-warp``: eyes, nose or mouth moved, enlarged or shrunk by a smooth local warp (what
  reenactment and expression edits leave: resampled, slightly blurred parts);
- ``reencode``: the face region compressed as a low-quality JPEG, blurred or down- and up-scaled,
  and pasted back (a generator's lower-quality output inside a sharper frame);
- ``boundary``: a slightly recoloured face pasted back through a random mask shape (ellipse,
  rectangle, polygon, lower or upper face) with a hard or soft edge (blending seams).

Every parameter is drawn from ``rng`` relative to the box, so a fresh generator with the same seed
makes the same manipulation on every frame of a video (no flicker). Only the region of interest
(``face_masks.face_roi``: the box grown by a quarter per side) ever changes.
"""

from __future__ import annotations

from typing import Callable, Optional

import cv2
import numpy as np

from dfdc_infer.registry import Registry

from .face_masks import Box, ellipse_mask, face_roi, landmarks_from_box, random_mask

Face = tuple[np.ndarray, Box]
"""An RGB image and the face box in it: a swap's donor."""
FakeMethod = Callable[[np.ndarray, Box, np.random.Generator, Optional[Face]], np.ndarray]

METHODS: Registry[FakeMethod] = Registry("fake method")
DONOR_METHODS = frozenset({"face-swap"})
"""Methods that need another person's face; without one they are refused (``make_fake``)."""


def make_fake(method: str, image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """``METHODS[method]`` applied to a copy of ``image``; checks the box and, where needed, the donor."""
    x1, y1, x2, y2 = box
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ValueError(f"face box too small to manipulate: {box}")
    function = METHODS.get(method)
    if method in DONOR_METHODS and donor is None:
        raise ValueError(f"fake method {method!r} needs a donor face")
    return function(image, box, rng, donor)


def _paste(image: np.ndarray, roi: tuple[int, int, int, int], source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of ``image`` whose ROI is ``mask`` x ``source`` + (1 - ``mask``) x itself."""
    x0, y0, x1, y1 = roi
    out = image.copy()
    region = out[y0:y1, x0:x1]
    face = np.clip(source, 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = cv2.blendLinear(face, region, mask.astype(np.float32), (1 - mask).astype(np.float32))
    return out


def _face_region(image: np.ndarray, box: Box) -> tuple[tuple[int, int, int, int], Box, np.ndarray]:
    """The region a method may change (``face_roi``), the face box in its pixels, and the region's pixels (a view)."""
    roi = face_roi(box, *image.shape[:2])
    x1, y1, x2, y2 = box
    return roi, (x1 - roi[0], y1 - roi[1], x2 - roi[0], y2 - roi[1]), image[roi[1]:roi[3], roi[0]:roi[2]]


@METHODS.register("self-blend")
def self_blend(image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """A jittered copy of the face (gain, offset, zoom, shift, blur or sharpen) through a feathered ellipse."""
    gain = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    offset = rng.uniform(-20, 20, size=3).astype(np.float32)
    zoom = rng.uniform(0.94, 1.06)
    axes_fraction = rng.uniform(0.42, 0.55, size=2)
    shift_fraction = rng.uniform(-0.04, 0.04, size=2)
    feather, ratio = rng.uniform(0.1, 0.3), rng.uniform(0.6, 1.0)
    texture, strength = rng.choice(["none", "blur", "sharpen"]), rng.uniform(0.6, 1.5)

    roi, (x1, y1, x2, y2), region = _face_region(image, box)
    bw, bh = x2 - x1, y2 - y1
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    source = region.astype(np.float32) * gain + offset
    shift = shift_fraction * (bw, bh)
    matrix = np.array([[zoom, 0, (1 - zoom) * cx + shift[0]], [0, zoom, (1 - zoom) * cy + shift[1]]])
    source = cv2.warpAffine(source, matrix, region.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if texture == "blur":
        source = cv2.GaussianBlur(source, (0, 0), strength)
    elif texture == "sharpen":
        source = source + strength * (source - cv2.GaussianBlur(source, (0, 0), 1.5))
    mask = ellipse_mask(region.shape[:2], (cx, cy), tuple(axes_fraction * (bw, bh)), feather) * np.float32(ratio)
    return _paste(image, roi, source, mask)


def _lab_statistics(lab: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    total = max(float(weights.sum()), 1e-6)
    mean = (lab * weights[..., None]).reshape(-1, 3).sum(0) / total
    variance = (((lab - mean) ** 2) * weights[..., None]).reshape(-1, 3).sum(0) / total
    return mean, np.sqrt(variance) + 1e-3


@METHODS.register("face-swap")
def face_swap(image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """``donor``'s face mapped onto ``box`` (box to box), its Lab colour moved to the target's, blended in."""
    if donor is None:
        raise ValueError("face-swap needs a donor face")
    axes_fraction = rng.uniform(0.36, 0.48, size=2)
    feather, ratio = rng.uniform(0.1, 0.35), rng.uniform(0.85, 1.0)
    transfer = rng.uniform(0.7, 1.0)
    blur = rng.uniform(0.0, 1.0)

    donor_image, (dx1, dy1, dx2, dy2) = donor
    roi, (x1, y1, x2, y2), region = _face_region(image, box)
    sx, sy = (x2 - x1) / (dx2 - dx1), (y2 - y1) / (dy2 - dy1)
    matrix = np.array([[sx, 0, x1 - dx1 * sx], [0, sy, y1 - dy1 * sy]])
    interpolation = cv2.INTER_AREA if max(sx, sy) < 1 else cv2.INTER_LINEAR
    source = cv2.warpAffine(donor_image, matrix, region.shape[1::-1], flags=interpolation, borderMode=cv2.BORDER_REFLECT)
    if blur > 0.5:
        source = cv2.GaussianBlur(source, (0, 0), blur)
    mask = ellipse_mask(region.shape[:2], ((x1 + x2) / 2, (y1 + y2) / 2 + 0.04 * (y2 - y1)),
                        tuple(axes_fraction * (x2 - x1, y2 - y1)), feather)
    target_lab = cv2.cvtColor(region, cv2.COLOR_RGB2LAB).astype(np.float32)
    source_lab = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    (target_mean, target_std), (source_mean, source_std) = _lab_statistics(target_lab, mask), _lab_statistics(source_lab, mask)
    matched = (source_lab - source_mean) * (target_std / source_std) + target_mean
    source_lab = transfer * matched + (1 - transfer) * source_lab
    source = cv2.cvtColor(np.clip(source_lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return _paste(image, roi, source.astype(np.float32), mask * np.float32(ratio))


@METHODS.register("part-warp")
def part_warp(image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """One to three facial parts moved and resized by smooth Gaussian-weighted displacements."""
    parts = rng.permutation(3)[:int(rng.integers(1, 4))]  # 0: eyes, 1: nose, 2: mouth
    shifts = rng.uniform(-0.06, 0.06, size=(3, 2))
    scales = rng.uniform(-0.25, 0.25, size=3)  # > 0 enlarges the part
    spreads = rng.uniform(0.1, 0.16, size=3)

    roi, local, region = _face_region(image, box)
    bw, bh = local[2] - local[0], local[3] - local[1]
    landmarks = landmarks_from_box(local)
    centres = {0: landmarks[:2], 1: landmarks[2:3], 2: landmarks[3:].mean(0, keepdims=True)}
    yy, xx = np.mgrid[0:region.shape[0], 0:region.shape[1]].astype(np.float32)
    dx, dy = np.zeros_like(xx), np.zeros_like(yy)
    for part in parts:
        sigma = spreads[part] * max(bw, bh)
        for cx, cy in centres[int(part)]:
            weight = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma * sigma))
            weight[weight < 1e-3] = 0  # far pixels stay exactly as they were
            # A pixel shows what sits at (x - d): shifting moves the part by +shift, scaling pulls from nearer the centre.
            dx += weight * (shifts[part, 0] * bw + scales[part] * (xx - cx))
            dy += weight * (shifts[part, 1] * bh + scales[part] * (yy - cy))
    warped = cv2.remap(region, xx - dx, yy - dy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = image.copy()
    out[roi[1]:roi[3], roi[0]:roi[2]] = warped
    return out


@METHODS.register("reencode")
def reencode(image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """The face region degraded (JPEG quality 5-35, blur, or down/up-scaling) and pasted back softly."""
    kind = ("jpeg", "blur", "resample")[int(rng.integers(3))]
    quality, sigma, factor = int(rng.integers(5, 36)), rng.uniform(1.0, 2.5), rng.uniform(2.0, 4.0)
    axes_fraction, feather = rng.uniform(0.4, 0.55, size=2), rng.uniform(0.05, 0.3)

    roi, (x1, y1, x2, y2), region = _face_region(image, box)
    if kind == "jpeg":
        encoded = cv2.imencode(".jpg", region, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        source = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    elif kind == "blur":
        source = cv2.GaussianBlur(region, (0, 0), sigma)
    else:
        height, width = region.shape[:2]
        small = cv2.resize(region, (max(1, round(width / factor)), max(1, round(height / factor))), interpolation=cv2.INTER_AREA)
        source = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = ellipse_mask(region.shape[:2], ((x1 + x2) / 2, (y1 + y2) / 2), tuple(axes_fraction * (x2 - x1, y2 - y1)), feather)
    return _paste(image, roi, source.astype(np.float32), mask)


@METHODS.register("boundary")
def boundary(image: np.ndarray, box: Box, rng: np.random.Generator, donor: Face | None = None) -> np.ndarray:
    """The face, slightly recoloured and shifted, pasted back through a random mask shape."""
    gain = rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    offset = rng.uniform(-12, 12, size=3).astype(np.float32)
    shift_fraction = rng.uniform(-0.03, 0.03, size=2)

    roi, local, region = _face_region(image, box)
    mask = random_mask(region.shape[:2], local, rng)
    shift = shift_fraction * (local[2] - local[0], local[3] - local[1])
    matrix = np.array([[1.0, 0, shift[0]], [0, 1.0, shift[1]]])
    source = cv2.warpAffine(region.astype(np.float32) * gain + offset, matrix, region.shape[1::-1], flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    return _paste(image, roi, source, mask)
