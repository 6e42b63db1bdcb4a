"""Difference masks: where a fake crop differs from its original's crop, and the cutout that uses them.

DFDC fakes are pixel-aligned with their originals, and extraction cuts a fake with its original's
face boxes (``extract``), so the two crops cover the same frame pixels and their difference is the
manipulation plus two independent compression noises. A mask is that difference as one uint8
channel (0 = unchanged, larger = more changed), computed by a method from ``MASK_METHODS``:

- ``absdiff`` (the default): the difference of the two crops after a light Gaussian blur (sigma
  ``BLUR_SIGMA`` at a 256-px crop), its absolute value, the largest of the three channels, in
  pixel levels. The blur averages the codec noise away before the absolute value is taken.
- ``ssim``: 1 - the structural similarity map (scikit-image's defaults, 7x7 window, as the DFDC
  1st place's ``generate_diffs.py``), averaged over channels, times 255.

Measured on generated fakes of all five ``dfdc_fakes`` methods, H.264-encoded separately from their
originals and stored as JPEG q95 (``python -m dfdc_tools.benchmark_training masks``, README): absdiff
separates manipulated from untouched pixels better (pixel AUC 0.989 vs 0.973, best IoU with the
true region 0.89 vs 0.81) at a third of the time. A wider blur helps smooth colour changes but
erases texture-only ones (``reencode``): sigma 1.5 is the best compromise of those measured.

Masks are stored as grayscale PNG next to the crop (``FRAME_FACE_mask.png``) at a quarter of the
crop's side (``MASK_SCALE``), with values under ``NOISE_FLOOR`` zeroed: ~1.4 KB for a 256-px crop
instead of ~14 KB at full size (measured), and where the change is, which is what the cutout needs,
survives the averaging.
The augmentation (training's ``--cutout-prob``, ``data.TrainBatches.cutout``) draws the square
holding the most change once from a group's fake (``most_changed_box``) and ``blank``s it in every
crop of the group, the real too, so a model cannot rest on one artefact and a black square never
means FAKE.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from dfdc_infer.registry import Registry

from .layout import DataError

MaskMethod = Callable[[np.ndarray, np.ndarray], np.ndarray]
MASK_METHODS: Registry[MaskMethod] = Registry("mask method")
"""``(original, fake)`` (H, W, 3) uint8 crops of one size -> (H, W) uint8 mask."""

BLUR_SIGMA = 1.5
"""absdiff's Gaussian sigma at a 256-px crop (scaled with the side): wide enough to average JPEG
and H.264 noise, narrow enough to keep texture-only changes (the benchmark's sweep: 0, 1.5, 3, 5)."""
NOISE_FLOOR = 4
"""Mask values below this are stored as 0: after the blur, two encodes of one frame differ by less
(4 is absdiff's best threshold in the benchmark), and zeros make the PNG small."""

MASK_SCALE = 4
"""Stored masks are this many times smaller than their crop per side (area averaging)."""

Box = tuple[float, float, float, float]
"""``(left, top, right, bottom)`` as fractions of the image's width and height, so one box fits a
crop at any size (on disk, or resized to the model's input)."""


@MASK_METHODS.register("absdiff")
def blurred_absdiff(original: np.ndarray, fake: np.ndarray, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """The largest per-channel absolute difference of the two crops after a light Gaussian blur
    (``sigma`` at a 256-px crop; 0: no blur)."""
    sigma = sigma * max(original.shape[:2]) / 256
    if sigma == 0:
        return np.abs(fake.astype(np.int16) - original).max(axis=2).astype(np.uint8)
    difference = cv2.GaussianBlur(fake.astype(np.float32) - original.astype(np.float32), (0, 0), sigma)
    return np.clip(np.abs(difference).max(axis=2), 0, 255).astype(np.uint8)


@MASK_METHODS.register("ssim")
def ssim_difference(original: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """(1 - SSIM map), averaged over channels, x 255."""
    from skimage.metrics import structural_similarity  # development dependency; only this method needs it

    _, similarity = structural_similarity(original, fake, channel_axis=2, data_range=255, full=True)
    return np.clip((1 - similarity.mean(axis=2)) * 255, 0, 255).astype(np.uint8)


def difference_mask(original: np.ndarray, fake: np.ndarray, method: str = "absdiff", scale: int = MASK_SCALE) -> np.ndarray:
    """(H / scale, W / scale) uint8 mask of where ``fake`` differs from ``original`` (area-averaged
    by ``scale``); values under ``NOISE_FLOOR`` are 0."""
    if original.shape != fake.shape:
        raise ValueError(f"a difference mask needs two crops of one shape, got {original.shape} and {fake.shape}")
    mask = MASK_METHODS.get(method)(original, fake)
    if scale > 1:
        height, width = mask.shape
        mask = cv2.resize(mask, (max(width // scale, 1), max(height // scale, 1)), interpolation=cv2.INTER_AREA)
    mask[mask < NOISE_FLOOR] = 0
    return mask


def save_mask(path: Path, mask: np.ndarray) -> None:
    """Write a mask as a grayscale PNG; raises OSError when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), mask):
        raise OSError(f"could not write {path}")


def load_mask(path: Path) -> np.ndarray:
    """(H, W) uint8; a missing or unreadable file is a ``DataError`` naming it."""
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DataError(f"difference mask missing or unreadable: {path} (re-run extraction for its video)")
    return mask


def most_changed_box(mask: np.ndarray, rng: np.random.Generator, side: tuple[float, float] = (0.3, 0.5),
                     min_left: float = 0.25) -> Box | None:
    """The square holding the most change (the largest sum of mask values; side drawn from
    ``side`` x the mask's shorter side), or None when there is nothing to blank.

    None also when blanking it would hide more than ``1 - min_left`` of all the change: a fake
    whose whole manipulation is hidden would be a fake-labelled real face (the 1st place's blackout
    likewise keeps some changed pixels visible). Ties go to the top-most, then left-most square.
    """
    weights = mask.astype(np.float32)
    total = float(weights.sum())
    if total == 0:
        return None
    height, width = mask.shape
    k = max(1, int(round(rng.uniform(*side) * min(height, width))))
    sums = cv2.boxFilter(weights, -1, (k, k), normalize=False, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    sums = sums[: height - k + 1, : width - k + 1]  # squares that lie wholly inside the mask
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    if (total - float(sums[top, left])) / total < min_left:
        return None
    return left / width, top / height, (left + k) / width, (top + k) / height


def blank(image: np.ndarray, box: Box, fill: int = 0) -> np.ndarray:
    """A copy of ``image`` with ``box`` (fractions, see ``Box``) filled with ``fill``."""
    height, width = image.shape[:2]
    left, top, right, bottom = (int(round(a * b)) for a, b in zip(box, (width, height, width, height)))
    out = image.copy()
    out[top:bottom, left:right] = fill
    return out
