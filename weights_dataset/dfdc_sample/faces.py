"""The face source: one real photograph, cut out once and pasted into frames.

The sample videos need faces that a real detector finds, without shipping or downloading any
data, so the face comes from the photograph scikit-image ships (``skimage.data.astronaut()``,
512x512, public domain). The head is cut out along a hand-traced, feathered outline (an ellipse
would keep a grey halo of the photo's backdrop); each video gets its own jittered copy
(:func:`jitter_sprite`) and :func:`paste_sprite` composites it at sub-pixel positions so motion
stays smooth. facenet-pytorch's MTCNN finds these faces at half resolution in >99% of frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data as skimage_data

Box = tuple[float, float, float, float]
"""A face box ``(x1, y1, x2, y2)`` in pixel coordinates."""

# In photo pixels: the patch holding head, hair and collar; the outline of hair, face and neck
# within it; and her face box as MTCNN (facenet-pytorch 2.6) detects it: (181.1, 62.2, 267.7, 172.1).
_HEAD_REGION = (130, 0, 320, 250)
_HEAD_OUTLINE = [(160, 58), (182, 34), (207, 22), (235, 17), (265, 23), (288, 42), (298, 75),
                 (296, 110), (283, 135), (272, 160), (272, 178), (285, 205), (290, 240), (160, 240),
                 (166, 205), (180, 178), (175, 160), (162, 135), (153, 105), (153, 80)]
_FACE_IN_PHOTO: Box = (181.0, 62.0, 268.0, 172.0)


@dataclass(frozen=True)
class FaceSprite:
    """A cut-out head: colour, opacity and where the face (detector-style box) sits in it."""

    rgb: np.ndarray
    """(h, w, 3) uint8."""
    alpha: np.ndarray
    """(h, w) float32 in [0, 1]; zero on the patch border so pasting leaves no hard edge."""
    face_box: Box
    """The face box in sprite pixel coordinates; this is what ground truth reports."""

    @property
    def face_height(self) -> float:
        return self.face_box[3] - self.face_box[1]


def load_face_sprite() -> FaceSprite:
    """Cut the head out of the astronaut photo along its feathered outline."""
    x1, y1, x2, y2 = _HEAD_REGION
    rgb = skimage_data.astronaut()[y1:y2, x1:x2]
    mask = np.zeros(rgb.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.array(_HEAD_OUTLINE, np.int32) - (x1, y1)], 1.0)
    # The outline keeps >= 10 px (4 sigma) from the patch border, so the feathered mask is ~0 there.
    mask = cv2.GaussianBlur(mask, (0, 0), 2.5)
    fx1, fy1, fx2, fy2 = _FACE_IN_PHOTO
    return FaceSprite(rgb, mask, (fx1 - x1, fy1 - y1, fx2 - x1, fy2 - y1))


def jitter_sprite(sprite: FaceSprite, rng: np.random.Generator, face_height: float) -> FaceSprite:
    """A per-video variant: resized so the face is ``face_height`` px, colour-jittered, maybe mirrored.

    Resizing once here (with area interpolation) keeps the per-frame warp close to 1:1, where
    bilinear sampling does not alias.
    """
    scale = face_height / sprite.face_height
    size = (max(1, round(sprite.rgb.shape[1] * scale)), max(1, round(sprite.rgb.shape[0] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    rgb = cv2.resize(sprite.rgb, size, interpolation=interp)
    alpha = cv2.resize(sprite.alpha, size, interpolation=interp)
    sx, sy = size[0] / sprite.rgb.shape[1], size[1] / sprite.rgb.shape[0]
    x1, y1, x2, y2 = sprite.face_box
    box = (x1 * sx, y1 * sy, x2 * sx, y2 * sy)
    gain = rng.uniform(0.8, 1.15, size=3).astype(np.float32)
    offset = rng.uniform(-15, 15, size=3).astype(np.float32)
    rgb = np.clip(rgb * gain + offset, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        rgb, alpha = rgb[:, ::-1].copy(), alpha[:, ::-1].copy()
        box = (size[0] - box[2], box[1], size[0] - box[0], box[3])
    return FaceSprite(rgb, np.clip(alpha, 0, 1), box)


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
