"""OpenCV's ``INTER_AREA`` shrinking in torch, for frames and crops that live on the GPU.

torch's ``interpolate(mode="area")`` is adaptive average pooling: for a ratio that is not a whole
number each output pixel averages a whole-pixel window, where OpenCV weighs every source pixel by
the share of it the output pixel covers. On face crops (a 300 px box shrunk to 224) the two differ
by up to about 100 levels on fine texture, and a deepfake classifier reads exactly that texture:
the GPU path would score other crops than the ones it was trained on. ``area_resize`` weighs as
OpenCV does, as two small matrix products (rows, then columns), and rounds halves up as its
integer-ratio path does: equal to ``cv2.resize(..., INTER_AREA)`` within one level.
"""

from __future__ import annotations

import torch


def area_weights(source: int, target: int, device: torch.device) -> torch.Tensor:
    """(target, source) float32: the share of each source pixel in each target pixel (rows sum to 1)."""
    scale = source / target
    starts = torch.arange(target, dtype=torch.float64, device=device) * scale
    pixels = torch.arange(source, dtype=torch.float64, device=device)
    covered = torch.minimum(starts[:, None] + scale, pixels[None, :] + 1) - torch.maximum(starts[:, None], pixels[None, :])
    return (covered.clamp_(min=0) / scale).float()


def area_resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, size[0], size[1], C) uint8 by area averaging, for shrinking; on
    the frames' device."""
    rows = area_weights(frames.shape[1], size[0], frames.device)
    columns = area_weights(frames.shape[2], size[1], frames.device)
    shrunk = torch.einsum("oh,nhwc->nowc", rows, frames.float())
    shrunk = torch.einsum("nowc,pw->nopc", shrunk, columns)
    return shrunk.add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)
