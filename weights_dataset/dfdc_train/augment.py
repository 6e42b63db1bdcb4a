"""Augmentations: small pure functions on (H, W, 3) uint8 RGB crops, their random draws, and two recipes.

The draws are made once per real/fake group and applied to each of its crops, so the real and the
fake of a pair differ only by the manipulation, never by the augmentation. Recipes
(``TrainConfig.augmentation``, ``RECIPES``):

- ``seed``: the seed notes' augmentations, each with its own flag (``AugmentParams``): zoom, flip,
  crappify, brightness;
- ``dfdc-1st``: the DFDC 1st place's heavy pipeline through albumentations (``heavy_pipeline``):
  JPEG compression, Gaussian noise and blur, flip, isotropic resize with padding, brightness and
  contrast / FancyPCA / hue and saturation, to-gray, shift/scale/rotate; before it, with some
  probability, one face part (the eyes, the nose or the mouth, found from the five landmarks) is
  blacked out (``landmark_cutout``), so no single region decides.

Batch-level mixing (``random_merge``, ``mixup``) runs after the per-crop steps in both recipes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import cv2
import numpy as np
import torch

from dfdc_infer.registry import Registry

if TYPE_CHECKING:  # config validates recipe names against RECIPES, so it imports this module, not the other way
    from .config import TrainConfig

Recipe = Callable[[np.ndarray, "AugmentParams", np.ndarray, int], np.ndarray]
"""(crop, the group's seed-recipe draws, the face's five (5, 2) landmarks in the crop, the group's seed) -> augmented crop."""


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


def recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode as a JPEG of ``quality``: an on-the-fly fake made on an already compressed crop
    keeps its traces pristine, where a video fake is compressed after the manipulation; compressing
    the real and the fake alike afterwards hides what the video's codec would have hidden."""
    encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])[1]
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)  # OpenCV's JPEG takes BGR


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
    jpeg_quality: int = 0
    """0: no recompression."""


def draw_params(rng: np.random.Generator, config: TrainConfig, crop_margin: float) -> AugmentParams:
    """Draw every augmentation with its ``TrainConfig`` probability (always the same number of draws,
    so one setting does not shift the random stream of the others)."""
    flip, bright, zoomed, crappified, merged, compressed = rng.random(6)
    shift = rng.uniform(-config.brightness_max, config.brightness_max)
    margin = rng.uniform(*config.zoom_range)
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    return AugmentParams(
        flip=bool(flip < config.flip_prob),
        brightness=float(shift) if bright < config.brightness_prob else 0.0,
        zoom=margin_zoom(crop_margin, float(margin)) if zoomed < config.zoom_prob else 1.0,
        crappify=bool(crappified < config.crappify_prob),
        merge=bool(merged < config.merge_prob),
        jpeg_quality=quality if compressed < config.jpeg_prob else 0,
    )


def augment(image: np.ndarray, params: AugmentParams, config: TrainConfig) -> np.ndarray:
    """Apply one group's per-crop draws: recompression first (it stands for the video's codec), then geometry,
    then the quality and light changes."""
    if params.jpeg_quality:
        image = recompress(image, params.jpeg_quality)
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


def landmark_cutout(image: np.ndarray, landmarks: np.ndarray, part: int) -> np.ndarray:
    """A copy with one face part blacked out: 0 the eyes (a band through both), 1 the nose, 2 the mouth.

    ``landmarks`` are MTCNN's five points (left eye, right eye, nose, mouth corners) in crop
    pixels; the stroke is a quarter of the eye distance thick, about the size of the part.
    """
    out = image.copy()
    eyes, nose, mouth = landmarks[:2], landmarks[2], landmarks[3:]
    thickness = max(1, int(round(0.25 * float(np.linalg.norm(eyes[1] - eyes[0])))))
    if part == 0:
        ends = eyes + (eyes[0] - eyes[1]) * np.array([[0.25], [-0.25]])
    elif part == 1:
        ends = np.stack([nose - (0, thickness), nose + (0, thickness)])
    else:
        ends = mouth + (mouth[0] - mouth[1]) * np.array([[0.15], [-0.15]])
    start, end = (tuple(int(round(v)) for v in point) for point in ends)
    cv2.line(out, start, end, (0, 0, 0), thickness)
    return out


@contextmanager
def environment_variable(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` inside the block only (a variable the user set keeps the user's value)."""
    before = os.environ.get(name)
    os.environ.setdefault(name, value)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)


def heavy_pipeline(size: int) -> Any:
    """The 1st place's recipe as an albumentations ``Compose`` ending at ``size`` x ``size``.

    Imported here, not at module level: albumentations is a training-only dependency, and its
    import-time update check is switched off for that import only (no network on training machines
    either; the process's environment is left as it was).
    """
    with environment_variable("NO_ALBUMENTATIONS_UPDATE", "1"):
        import albumentations as A

    return A.Compose([
        A.ImageCompression(quality_range=(60, 100), p=0.5),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.1),
        A.GaussianBlur(blur_limit=(3, 3), p=0.05),
        A.HorizontalFlip(p=0.5),
        A.OneOf([A.LongestMaxSize(max_size=size, interpolation=method)
                 for method in (cv2.INTER_AREA, cv2.INTER_CUBIC, cv2.INTER_LINEAR)], p=1.0),
        A.PadIfNeeded(min_height=size, min_width=size, border_mode=cv2.BORDER_CONSTANT, fill=0),
        A.OneOf([A.RandomBrightnessContrast(), A.FancyPCA(), A.HueSaturationValue()], p=0.7),
        A.ToGray(p=0.2),
        A.Affine(translate_percent=(-0.1, 0.1), scale=(0.8, 1.2), rotate=(-10, 10), border_mode=cv2.BORDER_CONSTANT, fill=0, p=0.5),
    ])


CUTOUT_PROB = 0.3
RECIPES: Registry[Callable[[TrainConfig, int], Recipe]] = Registry("augmentation recipe")
"""Recipe factories: (config, model input size) -> a ``Recipe``."""


@RECIPES.register("seed")
def seed_recipe(config: TrainConfig, size: int) -> Recipe:
    return lambda image, params, landmarks, seed: augment(image, params, config)


@RECIPES.register("dfdc-1st")
def dfdc_first_recipe(config: TrainConfig, size: int) -> Recipe:
    pipeline = heavy_pipeline(size)

    def apply(image: np.ndarray, params: AugmentParams, landmarks: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 1])
        if rng.random() < CUTOUT_PROB:
            image = landmark_cutout(image, landmarks, int(rng.integers(3)))
        pipeline.set_random_seed(seed % 2**32)  # the same draws for every crop of the group
        return pipeline(image=image)["image"]

    return apply
