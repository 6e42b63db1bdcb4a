"""Self-blended fakes: a face blended back onto itself after a small transform.

Self-blending (Shiohara & Yamasaki, CVPR 2022) makes training fakes without a face-swap model:
the blending boundary and the colour/geometry mismatch it leaves are the artefacts that real
deepfakes share. The sample generator uses it to make FAKE videos from REAL ones, and training
code can call :func:`self_blend` on face crops, so it is a pure function of (image, box, rng).
"""

from __future__ import annotations

import cv2
import numpy as np

from dfdc_sample.faces import Box


def self_blend(image: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``image`` (H, W, 3 uint8) with the face in ``box`` self-blended.

    A jittered copy of the face region (per-channel gain and offset, slight scale and shift,
    optionally blurred or sharpened) is blended back through a feathered ellipse scaled by a
    random blend ratio. Pixels farther than a quarter of the box size from ``box`` never change,
    which lets tests check that a fake differs from its original only around the face.

    Every parameter is drawn from ``rng`` relative to the box, so a fresh generator with the
    same seed gives the same manipulation on every frame of a video (no flicker).
    """
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    if bw <= 0 or bh <= 0:
        raise ValueError(f"empty face box {box}")
    gain = rng.uniform(0.85, 1.15, size=3).astype(np.float32)
    offset = rng.uniform(-20, 20, size=3).astype(np.float32)
    zoom = rng.uniform(0.94, 1.06)
    shift = rng.uniform(-0.04, 0.04, size=2) * (bw, bh)
    axes = rng.uniform(0.42, 0.55, size=2) * (bw, bh)
    feather = rng.uniform(0.1, 0.3)
    ratio = rng.uniform(0.6, 1.0)
    texture = rng.choice(["none", "blur", "sharpen"])
    strength = rng.uniform(0.6, 1.5)

    # The mask reaches at most 0.55 * (1 + 0.3) = 0.715 box sizes from the centre: inside this ROI.
    h, w = image.shape[:2]
    rx0, ry0 = max(0, int(x1 - bw / 4)), max(0, int(y1 - bh / 4))
    rx1, ry1 = min(w, int(np.ceil(x2 + bw / 4))), min(h, int(np.ceil(y2 + bh / 4)))
    roi = image[ry0:ry1, rx0:rx1]
    cx, cy = (x1 + x2) / 2 - rx0, (y1 + y2) / 2 - ry0

    source = roi.astype(np.float32) * gain + offset
    matrix = np.array([[zoom, 0, (1 - zoom) * cx + shift[0]], [0, zoom, (1 - zoom) * cy + shift[1]]])
    source = cv2.warpAffine(source, matrix, (rx1 - rx0, ry1 - ry0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    if texture == "blur":
        source = cv2.GaussianBlur(source, (0, 0), strength)
    elif texture == "sharpen":
        source = source + strength * (source - cv2.GaussianBlur(source, (0, 0), 1.5))

    # A feathered ellipse in closed form: 1 inside radius 1 - feather, 0 beyond 1 + feather,
    # smoothstep between. Same look as a Gaussian-blurred ellipse, without a huge blur kernel.
    yy, xx = np.ogrid[0:ry1 - ry0, 0:rx1 - rx0]
    radius = np.sqrt(((xx - cx) / axes[0]) ** 2 + ((yy - cy) / axes[1]) ** 2).astype(np.float32)
    ramp = np.clip((1 + feather - radius) / (2 * feather), 0, 1)
    mask = ramp * ramp * (3 - 2 * ramp) * np.float32(ratio)

    out = image.copy()
    face = np.clip(source, 0, 255).astype(np.uint8)
    out[ry0:ry1, rx0:rx1] = cv2.blendLinear(face, roi, mask, 1 - mask)
    return out
