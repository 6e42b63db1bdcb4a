"""Where the fake is, as a training signal: a small head learns each pair's difference mask beside the label.

A DFDC fake cut at the same pixels as its original differs from it only where the face was changed, so the pair says
not only that the crop is fake but where. With ``--mask-loss-weight W`` a 1x1 convolution on the network's last
feature map (``MaskHead``) is trained, by BCE per cell, towards the fraction of each cell's pixels that the fake
changed (0 everywhere for a real), and W x that loss is added to the label's: the features must then carry where the
manipulation is, which the label alone does not ask. The head exists only in training (in the resume state, not in
``best.pt``), so a checkpoint stays a plain timm classifier and inference does not change.

The classifier's own activation map was tried first as the mask predictor (no new parameters): under average pooling
its mean is the crop's logit, so pushing a fake's unchanged cells towards REAL fought the label, the logits grew
until calibration needed T = 8, and person-fold AUC fell (journal 2026-12-07, fourth session).

Targets come from the crops as the model sees them (after the group's shared augmentation), so flips, zooms and
rotations move the mask with the face. A crop gets no target (``UNKNOWN``) when its pair was cut apart (a deepfake-faces
fake framed by its own detection: the border differs by 33-48 levels, against 2-7 when aligned; about a quarter of
the dfdc-faces fakes), when its fake changed almost nothing (DFDC's audio-only fakes), or when it was changed after
pairing (random merge, mixup).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .difference_masks import blurred_absdiff

CHANGED_LEVEL = 16
"""A pixel counts as changed where the blurred absolute difference exceeds this many levels (four times absdiff's noise
floor: two encodes of one frame stay under it)."""
ALIGNED_BORDER = 15.0
"""A pair is pixel-aligned when the mean absolute difference of the crops' outer band stays under this (measured: 2-7
aligned, 33-48 cut apart)."""
BORDER = 0.1
"""Width of that outer band, as a fraction of the side: face swaps leave it alone."""
MIN_CHANGED = 0.005
"""A fake whose changed fraction is below this gives no target: nothing visible to point at."""
MASK_SIDE_DIVISOR = 4
"""Targets travel at a quarter of the input side (area-averaged); the loss pools them to the feature map's grid."""
UNKNOWN = -1.0
"""Fill of a crop's target when it has none; such crops add nothing to the mask loss."""


def is_aligned(original: np.ndarray, fake: np.ndarray) -> bool:
    """Whether two crops of one shape cover the same pixels: their outer band (``BORDER``) barely differs."""
    side = max(1, round(BORDER * min(original.shape[:2])))
    difference = np.abs(original.astype(np.int16) - fake.astype(np.int16))
    band = np.ones(difference.shape[:2], dtype=bool)
    band[side:-side, side:-side] = False
    return float(difference[band].mean()) < ALIGNED_BORDER


def changed_pixels(original: np.ndarray, fake: np.ndarray) -> np.ndarray | None:
    """(H, W) bool, where ``fake`` differs from ``original`` by more than ``CHANGED_LEVEL``; None when the crops differ in
    shape or are not pixel-aligned (their difference is then the framing, not the manipulation)."""
    if original.shape != fake.shape or not is_aligned(original, fake):
        return None
    return blurred_absdiff(original, fake) > CHANGED_LEVEL


def change_target(original: np.ndarray, fake: np.ndarray, side: int) -> np.ndarray | None:
    """(side, side) float32: the fraction of each cell's pixels where ``fake`` differs from ``original``, or None when the
    crops are not pixel-aligned or differ in shape, or the fake changed less than ``MIN_CHANGED`` of the crop."""
    changed = changed_pixels(original, fake)
    if changed is None or changed.mean() < MIN_CHANGED:
        return None
    return cv2.resize(changed.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)


def batch_targets(images: list[np.ndarray], labels: list[float], reals: list[int | None], usable: list[bool],
                  side: int) -> torch.Tensor:
    """(N, 1, side, side) targets of a batch's crops (all of one shape): zeros for a real, ``change_target`` against the
    group's real (``reals[i]``, its index in ``images``) for a fake, ``UNKNOWN`` where there is none or ``usable[i]`` is
    False."""
    targets = np.full((len(images), 1, side, side), UNKNOWN, dtype=np.float32)
    for index, (image, label, real, ok) in enumerate(zip(images, labels, reals, usable, strict=True)):
        if not ok:
            continue
        if label == 0.0:
            targets[index] = 0.0
        elif label == 1.0 and real is not None and usable[real]:
            target = change_target(images[real], image, side)
            if target is not None:
                targets[index, 0] = target
    return torch.from_numpy(targets)


class MaskHead(nn.Module):
    """One 1x1 convolution from the network's last feature map to a map of logits, one per cell: where the crop was
    changed. Zero at the start (every cell at 0.5), like the classifier."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.conv(features)


class WithMaskHead(nn.Module):
    """A timm classifier and a ``MaskHead`` on its last feature map, for training: returns (logits, the head's map)."""

    def __init__(self, network: nn.Module, head: MaskHead) -> None:
        super().__init__()
        self.network = network
        self.head = head

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.network.forward_features(images)
        return self.network.forward_head(features), self.head(features)


def mask_loss(cells: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE per cell between the head's map and the targets pooled to its grid, over crops with a target (0 when
    none has one, still attached to the graph so every process's backward sees the same parameters)."""
    known = targets[:, 0, 0, 0] >= 0
    if not bool(known.any()):
        return cells.sum() * 0.0
    pooled = F.adaptive_avg_pool2d(targets[known], cells.shape[-2:])
    return F.binary_cross_entropy_with_logits(cells[known].float(), pooled)
