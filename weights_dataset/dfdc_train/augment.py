"""Augmentations: small pure functions on (H, W, 3) uint8 RGB crops, and their random draws.

The draws (``AugmentParams``) are made once per real/fake group and applied to each of its crops,
so the real and the fake of a pair differ only by the manipulation, never by the augmentation.
Batch-level mixing (``random_merge``, ``mixup``) runs after the per-crop steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .config import TrainConfig


def hflip(image: np.ndarray) -> np.ndarray:
    """Mirror left-right (faces are roughly symmetric; the artefacts are not tied to a side)."""
    return np.ascontiguousarray(image[:, ::-1])


def adjust_brightness(image: np.ndarray, shift: float) -> np.ndarray:
    """Add ``shift`` x 255 to every channel, clipped (DFDC lighting varies from dim rooms to sun)."""
    return np.clip(image.astype(np.int16) + int(round(shift * 255)), 0, 255).astype(np.uint8)


def crappify(image: np.ndarray, size: int = 64) -> np.ndarray:
    """Shrink to ``size`` px and enlarge back: blur and blocky detail as in low-resolution videos,
    so the model cannot rely on fine texture alone."""
    height, width = image.shape[:2]
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale the content about the centre by ``factor`` (> 1 zooms in), keeping the size; borders
    that zooming out uncovers are mirrored, not black, so no edge is there to learn from."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, factor)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def margin_zoom(crop_margin: float, margin: float) -> float:
    """The ``zoom`` factor that makes a crop cut with ``crop_margin`` look cut with ``margin``:
    the face box's side is 1/margin of the crop, so a 1.3 crop shown as 1.15 is zoomed by 1.3/1.15."""
    return crop_margin / margin


def merge_halves(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The left half of ``left`` beside the right half of ``right`` (a 50/50 vertical split)."""
    if left.shape != right.shape:
        raise ValueError(f"merge needs crops of one shape, got {left.shape} and {right.shape}")
    merged = left.copy()
    half = left.shape[1] // 2
    merged[:, half:] = right[:, half:]
    return merged


def mixup(images: torch.Tensor, labels: torch.Tensor, weight: float, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` x each sample + (1 - ``weight``) x the sample at ``order``; labels alike (soft)."""
    return weight * images + (1 - weight) * images[order], weight * labels + (1 - weight) * labels[order]


@dataclass(frozen=True)
class AugmentParams:
    """One group's draws; neutral values (no flip, shift 0, zoom 1) mean "not applied"."""

    flip: bool = False
    brightness: float = 0.0
    zoom: float = 1.0
    crappify: bool = False
    merge: bool = False


def draw_params(rng: np.random.Generator, config: TrainConfig, crop_margin: float) -> AugmentParams:
    """Draw every augmentation with its ``TrainConfig`` probability (always the same number of draws,
    so one setting does not shift the random stream of the others)."""
    flip, bright, zoomed, crappified, merged = rng.random(5)
    shift = rng.uniform(-config.brightness_max, config.brightness_max)
    margin = rng.uniform(*config.zoom_range)
    return AugmentParams(
        flip=bool(flip < config.flip_prob),
        brightness=float(shift) if bright < config.brightness_prob else 0.0,
        zoom=margin_zoom(crop_margin, float(margin)) if zoomed < config.zoom_prob else 1.0,
        crappify=bool(crappified < config.crappify_prob),
        merge=bool(merged < config.merge_prob),
    )


def augment(image: np.ndarray, params: AugmentParams, config: TrainConfig) -> np.ndarray:
    """Apply one group's per-crop draws: geometry first, then the quality and light changes."""
    if params.zoom != 1.0:
        image = zoom(image, params.zoom)
    if params.flip:
        image = hflip(image)
    if params.crappify:
        image = crappify(image, config.crappify_size)
    if params.brightness:
        image = adjust_brightness(image, params.brightness)
    return image


def random_merge(images: list[np.ndarray], labels: list[float], selected: list[bool], rng: np.random.Generator) -> list[np.ndarray]:
    """Each selected crop gets the right half of another crop of the batch with the same label
    (unchanged if there is none): new faces whose halves disagree, the label still exact."""
    merged = list(images)
    for position, chosen in enumerate(selected):
        partners = [other for other, label in enumerate(labels) if label == labels[position] and other != position]
        if chosen and partners:
            merged[position] = merge_halves(images[position], images[partners[int(rng.integers(len(partners)))]])
    return merged
