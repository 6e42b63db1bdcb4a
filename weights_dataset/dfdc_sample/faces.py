"""The face sources: real photographed heads, cut out automatically and varied per video.

Every face photo of ``dfdc_sample.photos`` is searched with the project's own MTCNN (the kernel's
detector); each face it finds becomes one identity (``astronaut``, ``hopper``, ``hanks``, ``takeo``,
``tongue``, and, left to right, the group photo's ``t1-1`` ... ``t1-6`` and ``breakingbad-1``, ``-2``),
except that the photos of one named person (``obama``'s three, a video's frames) are all that
person's heads, and a video of them picks one. The head is cut with a soft mask, an
ellipse placed from the face box (forehead and hair above the brows, a little neck below the chin)
with a smooth edge, so no photo needs a hand-traced outline. The faces found are cached beside the
photos, in the cache folder passed down (``--cache-dir``; ``dfdc_infer.config.default_cache_dir``).

Each video draws its own variant of a head (:func:`vary_sprite`): roll, aspect and shear (pose and
face shape), a smile- or squint-like warp, skin tone, lighting from one side, colour, mirroring.
All of it happens at photo resolution before the head is shrunk to video size, so a real video
carries no warping trace at video resolution (which is what the ``part-warp`` fake leaves).
:func:`paste_sprite` composites a head at sub-pixel positions so motion stays smooth.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfdc_fakes.face_masks import Box, ellipse_mask, landmarks_from_box
from dfdc_infer.config import InferenceConfig, default_cache_dir

from .photos import Photo, load_photos, photos_dir

log = logging.getLogger(__name__)

CUT_VERSION = 1
"""Part of the cache key: bump when the cutting changes."""
MIN_FACE_SCORE, MIN_FACE_HEIGHT = 0.95, 60


@dataclass(frozen=True)
class FaceSprite:
    """A cut-out head: colour, opacity, where the face (detector-style box) sits in it, and who it is."""

    rgb: np.ndarray
    """(h, w, 3) uint8."""
    alpha: np.ndarray
    """(h, w) float32 in [0, 1]; zero on the patch border so pasting leaves no hard edge."""
    face_box: Box
    """The face box in sprite pixel coordinates; this is what ground truth reports."""
    identity: str = ""

    @property
    def face_height(self) -> float:
        return self.face_box[3] - self.face_box[1]


def cut_head(image: np.ndarray, box: Box, identity: str) -> FaceSprite:
    """The head around face ``box`` of a photo, with a soft elliptical mask placed from the box."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    centre, axes = ((x1 + x2) / 2, y1 + 0.38 * h), (0.7 * w, 0.8 * h)
    feather = 0.12
    left, top = max(0, int(centre[0] - axes[0] * 1.15)), max(0, int(centre[1] - axes[1] * 1.15))
    right, bottom = min(image.shape[1], int(centre[0] + axes[0] * 1.15) + 1), min(image.shape[0], int(centre[1] + axes[1] * 1.15) + 1)
    alpha = ellipse_mask((bottom - top, right - left), (centre[0] - left, centre[1] - top), axes, feather)
    # A face cut close to the photo's edge (an aligned face crop) fades out inside the patch instead of ending hard.
    fade = np.ones_like(alpha)
    margin = max(2, int(0.06 * h))
    ramp = np.linspace(0, 1, margin, dtype=np.float32)
    for side, touching in (("left", left == 0), ("top", top == 0), ("right", right == image.shape[1]), ("bottom", bottom == image.shape[0])):
        if touching:
            view = {"left": fade[:, :margin], "top": fade[:margin], "right": fade[:, -margin:], "bottom": fade[-margin:]}[side]
            view *= ramp[None, :] if side == "left" else ramp[:, None] if side == "top" else ramp[None, ::-1] if side == "right" else ramp[::-1, None]
    return FaceSprite(np.ascontiguousarray(image[top:bottom, left:right]), alpha * fade, (x1 - left, y1 - top, x2 - left, y2 - top), identity)


def find_faces(photo: Photo, cache_dir: Path) -> list[Box]:
    """The photo's clear faces (MTCNN score >= 0.95, >= 60 px tall), left to right; cached per photo content in
    ``cache_dir`` (where the MTCNN weights are fetched to as well)."""
    digest = hashlib.sha256(photo.image.tobytes()).hexdigest()[:16]
    path = photos_dir(cache_dir) / f"faces-{photo.name}-{digest}-v{CUT_VERSION}.npy"
    if path.is_file():
        return [tuple(map(float, row)) for row in np.load(path)]
    from dfdc_infer.face_detection import create_detector

    found = create_detector(InferenceConfig(detector_scale=1.0, min_face_size=30, cache_dir=cache_dir)).detect(photo.image[None])[0]
    boxes = sorted((row[:4] for row in found if row[4] >= MIN_FACE_SCORE and row[3] - row[1] >= MIN_FACE_HEIGHT), key=lambda b: b[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.array(boxes, np.float64).reshape(-1, 4))
    return [tuple(map(float, row)) for row in boxes]


@functools.lru_cache(maxsize=4)
def load_face_sprites(sources: tuple[str, ...] | None = None, cache_dir: Path | None = None) -> tuple[FaceSprite, ...]:
    """Every head of every available photo source, in identity order (see the module doc); the photos, the faces
    found in them and the detector's weights are kept in ``cache_dir`` (None: ``default_cache_dir()``).

    A photo of a named ``person`` gives one head, its largest face, with the person as identity; a
    person shown by several photos has several heads, in photo order.
    """
    cache_dir = cache_dir or default_cache_dir()
    sprites = []
    for photo in load_photos(list(sources) if sources is not None else None, cache_dir):
        boxes = find_faces(photo, cache_dir)
        if not boxes:
            log.warning("no clear face found in photo %r; it is not used", photo.name)
        elif photo.person is not None:
            sprites.append(cut_head(photo.image, max(boxes, key=lambda box: box[3] - box[1]), photo.person))
        else:
            for number, box in enumerate(boxes, start=1):
                sprites.append(cut_head(photo.image, box, photo.name if len(boxes) == 1 else f"{photo.name}-{number}"))
    return tuple(sorted(sprites, key=lambda sprite: sprite.identity))  # stable: a person's heads stay in photo order


def heads_by_identity(sprites: tuple[FaceSprite, ...]) -> dict[str, tuple[FaceSprite, ...]]:
    """The heads grouped by identity, in identity order."""
    heads: dict[str, list[FaceSprite]] = {}
    for sprite in sprites:
        heads.setdefault(sprite.identity, []).append(sprite)
    return {identity: tuple(group) for identity, group in heads.items()}


def load_face_sprite() -> FaceSprite:
    """The astronaut's head (scikit-image ships it, so it is always there): for tests and tools needing one face."""
    return load_face_sprites(("astronaut",))[0]


def _geometry(sprite: FaceSprite, roll: float, aspect: float, shear: float) -> FaceSprite:
    """Rotate by ``roll`` degrees, stretch the width by ``aspect`` and shear about the face centre.

    The detector boxes an upright-ish face by its own size, not by the rotated box's bounding box,
    so the new box is the old one stretched and moved with the centre.
    """
    x1, y1, x2, y2 = sprite.face_box
    centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    linear = cv2.getRotationMatrix2D((0.0, 0.0), roll, 1.0)[:, :2] @ np.array([[aspect, shear], [0.0, 1.0]])
    height, width = sprite.alpha.shape
    corners = (np.array([[0, 0], [width, 0], [0, height], [width, height]]) - centre) @ linear.T
    low, high = corners.min(0), corners.max(0)
    matrix = np.hstack([linear, (-low - linear @ centre)[:, None]])
    size = (int(np.ceil(high[0] - low[0])), int(np.ceil(high[1] - low[1])))
    rgb = cv2.warpAffine(sprite.rgb, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(sprite.alpha, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    cx, cy = -low
    half_w, half_h = (x2 - x1) * aspect / 2, (y2 - y1) / 2
    return FaceSprite(rgb, alpha, (cx - half_w, cy - half_h, cx + half_w, cy + half_h), sprite.identity)


def _expression(rgb: np.ndarray, box: Box, smile: float, squint: float) -> np.ndarray:
    """Mouth corners pulled up and out by ``smile``, eyes narrowed by ``squint`` (fractions of the face size)."""
    x1, y1, x2, y2 = box
    size = max(x2 - x1, y2 - y1)
    landmarks = landmarks_from_box(box)
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]].astype(np.float32)
    dx, dy = np.zeros_like(xx), np.zeros_like(yy)
    sigma = 0.12 * size
    for (px, py), side in ((landmarks[3], -1), (landmarks[4], 1)):
        weight = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma * sigma))
        dx += weight * side * smile * size * 0.5
        dy -= weight * smile * size
    for px, py in landmarks[:2]:
        weight = np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma * sigma))
        dy += weight * squint * (yy - py)
    return cv2.remap(rgb, xx - dx, yy - dy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _tone_and_light(rgb: np.ndarray, box: Box, lightness: float, tint: np.ndarray, light: float, angle: float) -> np.ndarray:
    """Skin tone (Lab lightness gain and a/b shift) and light falling from one side (a linear ramp)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= lightness
    lab[..., 1:] += tint
    out = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    x1, y1, x2, y2 = box
    yy, xx = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]].astype(np.float32)
    along = ((xx - (x1 + x2) / 2) * np.cos(angle) + (yy - (y1 + y2) / 2) * np.sin(angle)) / max(x2 - x1, y2 - y1)
    return np.clip(out * (1 + light * np.clip(along, -1, 1))[..., None], 0, 255).astype(np.uint8)


def vary_sprite(sprite: FaceSprite, rng: np.random.Generator, face_height: float) -> FaceSprite:
    """A per-video variant of a head, resized so the face is ``face_height`` px (see the module doc).

    Resizing last, once, with area interpolation keeps the per-frame paste close to 1:1, where
    bilinear sampling does not alias.
    """
    roll, aspect, shear = rng.uniform(-12, 12), rng.uniform(0.88, 1.12), rng.uniform(-0.08, 0.08)
    smile, squint = rng.uniform(-0.02, 0.04), rng.uniform(0.0, 0.15)
    lightness, tint = rng.uniform(0.8, 1.15), rng.uniform(-8, 8, size=2).astype(np.float32)
    light, angle = rng.uniform(0.0, 0.35), rng.uniform(0, 2 * np.pi)
    gain = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    offset = rng.uniform(-15, 15, size=3).astype(np.float32)
    mirror = rng.random() < 0.5

    varied = _geometry(sprite, roll, aspect, shear)
    rgb = _expression(varied.rgb, varied.face_box, smile, squint)
    rgb = _tone_and_light(rgb, varied.face_box, lightness, tint, light, angle)
    scale = face_height / varied.face_height
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(rgb, size, interpolation=interpolation)
    alpha = cv2.resize(varied.alpha, size, interpolation=interpolation)
    sx, sy = size[0] / varied.rgb.shape[1], size[1] / varied.rgb.shape[0]
    x1, y1, x2, y2 = varied.face_box
    box = (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
    rgb = np.clip(rgb * gain + offset, 0, 255).astype(np.uint8)
    if mirror:
        rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        box = (size[0] - box[2], box[1], size[0] - box[0], box[3])
    return FaceSprite(rgb, np.clip(alpha, 0, 1), box, sprite.identity)


def paste_sprite(frame: np.ndarray, sprite: FaceSprite, cx: float, cy: float, scale: float) -> Box:
    """Composite ``sprite`` into ``frame`` (in place) centred at (cx, cy), scaled by ``scale``.

    Only the region under the sprite is touched, which keeps 1080p rendering cheap. Returns the
    face box in frame coordinates, clipped to the frame (it may be partly outside near edges).
    """
    fh, fw = frame.shape[:2]
    sh, sw = sprite.alpha.shape
    x0, y0 = cx - sw * scale / 2, cy - sh * scale / 2
    rx0, ry0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    rx1, ry1 = min(fw, int(np.ceil(x0 + sw * scale))), min(fh, int(np.ceil(y0 + sh * scale)))
    bx1, by1, bx2, by2 = sprite.face_box
    face = (x0 + bx1 * scale, y0 + by1 * scale, x0 + bx2 * scale, y0 + by2 * scale)
    if rx1 > rx0 and ry1 > ry0:
        matrix = np.array([[scale, 0, x0 - rx0], [0, scale, y0 - ry0]])
        rgb, alpha = (cv2.warpAffine(layer, matrix, (rx1 - rx0, ry1 - ry0), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                      for layer in (sprite.rgb, sprite.alpha))
        roi = frame[ry0:ry1, rx0:rx1]
        roi[:] = cv2.blendLinear(rgb, roi, alpha, 1 - alpha)
    return (min(max(face[0], 0), fw), min(max(face[1], 0), fh),
            min(max(face[2], 0), fw), min(max(face[3], 0), fh))
