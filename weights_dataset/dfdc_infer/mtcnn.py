"""MTCNN face detector (Zhang et al., 2016, "Joint Face Detection and Alignment using Multitask
Cascaded Convolutional Networks"), in this project's own torch code.

Three nets in cascade: PNet scans an image pyramid as a fully convolutional net and proposes
candidate boxes, RNet re-scores 24x24 crops of them, ONet re-scores 48x48 crops and gives the final
boxes. The modules carry the attribute names of facenet-pytorch's published state_dicts so those
load with ``strict=True``; the weights are Caffe/MATLAB originals converted, hence the RGB input
normalised as ``(x - 127.5) / 128`` and the (N, W, H, C) flattening order before the dense layers.

Every convolution runs batched over all images of a call (on the GPU when there is one); only the
greedy non-maximum suppression, which is sequential by nature and works on a few thousand boxes,
runs in numpy on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PYRAMID_FACTOR = 0.709
"""Ratio between consecutive pyramid levels: the original release's value, kept by its ports."""
_PNET_CELL = 12
_PNET_STRIDE = 2
_SUPERSAMPLE = 2
"""R/O-Net crops are sampled at this many points per output pixel and averaged, an anti-aliased
resize: plain bilinear sampling of a 200 px box down to 24 px skips most pixels (aliasing), which
let a false positive through in our checks; 2 matched the reference as well as 4 did."""


def _normalise(images: torch.Tensor) -> torch.Tensor:
    """MTCNN's input scaling, in channels_last layout like the nets' weights: detection on 30
    1080p frames took 4.8-5.3 s instead of 6.0-6.2 s on this project's 2-core CPU."""
    return ((images - 127.5) / 128.0).contiguous(memory_format=torch.channels_last)


def _flatten_caffe(features: torch.Tensor) -> torch.Tensor:
    """Flatten conv features in the order the converted Caffe dense weights expect: (N, W, H, C)."""
    return features.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell, stride 2."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (N, 3, H, W) -> face probability (N, h, w) and box offsets (N, 4, h, w)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (K, 3, 24, 24) -> face probability (K,) and box offsets (K, 4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_flatten_caffe(self.prelu3(self.conv3(x)))))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48x48 crops.

    ``dense6_3`` (five facial landmarks) is never evaluated: we only need boxes, but the layer has
    to exist for the published state_dict to load strictly.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised (K, 3, 48, 48) -> face probability (K,) and box offsets (K, 4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x)


def load_net(net: nn.Module, path: Path) -> nn.Module:
    """Load ``path`` into ``net`` strictly, naming the file in the error if it is not the right one.

    Anything torch.load or load_state_dict can raise (truncated zip, pickle junk, wrong keys or
    shapes, not a dict) means the same thing to the user: this file is broken or is another file.
    """
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:
        raise ValueError(
            f"MTCNN weight file {path} is corrupt or is not facenet-pytorch 2.6.0's "
            f"{path.name}: {error}"
        ) from error
    return net.eval()


class MTCNN:
    """The three-stage cascade over a batch of images; boxes come in the images' own pixels."""

    def __init__(
        self,
        weights_dir: Path,
        min_face_size: float,
        thresholds: Sequence[float],
        device: torch.device,
    ) -> None:
        """``min_face_size`` is in pixels of the images passed to ``detect``; ``thresholds`` are
        the P-, R- and O-Net face probabilities a candidate needs to survive each stage."""
        if min_face_size <= 0:
            raise ValueError(f"min_face_size must be positive, got {min_face_size}")
        self.device = device
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.pnet = load_net(PNet(), weights_dir / "pnet.pt").to(device, memory_format=torch.channels_last)
        self.rnet = load_net(RNet(), weights_dir / "rnet.pt").to(device, memory_format=torch.channels_last)
        self.onet = load_net(ONet(), weights_dir / "onet.pt").to(device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def detect(self, images: np.ndarray | torch.Tensor) -> list[np.ndarray]:
        """(N, H, W, 3) uint8 RGB, numpy or torch -> N arrays (K, 5) float32 [x1, y1, x2, y2, score],
        best first.

        Coordinates are continuous pixel positions (pixel i spans [i, i + 1)), unclamped.
        """
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        batch = images.to(self.device)
        batch = batch.permute(0, 3, 1, 2).float()
        boxes, scores, owner = self._propose(batch)
        boxes, scores, owner = self._refine(batch, boxes, owner)
        boxes, scores, owner = self._output(batch, boxes, owner)
        results = []
        for index in range(len(images)):
            mine = np.flatnonzero(owner == index)
            mine = mine[np.argsort(-scores[mine], kind="stable")]
            results.append(np.column_stack([boxes[mine], scores[mine]]).astype(np.float32))
        return results

    def _pyramid(self, height: int, width: int) -> list[float]:
        """Scales at which PNet's 12 px window covers faces from min_face_size to the image size."""
        first = _PNET_CELL / self.min_face_size
        count = math.floor(math.log(_PNET_CELL / (min(height, width) * first), PYRAMID_FACTOR)) + 1
        return [first * PYRAMID_FACTOR**level for level in range(max(count, 0))]

    def _propose(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 1: PNet windows over the pyramid -> regressed, squared candidates."""
        height, width = batch.shape[2:]
        # Every level is resampled from the full image, as the reference MTCNN does: shrinking each
        # level from a smaller one is up to 24% faster on CPU but blurs a little more per step,
        # which lost borderline faces (3 of 490 on generated videos) and moved boxes by a few pixels.
        levels = []
        for scale in self._pyramid(height, width):
            level = F.interpolate(batch, size=(math.ceil(height * scale), math.ceil(width * scale)), mode="area")
            levels.append(self._scan(level, scale))
        if not levels:  # image smaller than the smallest face looked for
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        boxes, scores, owner, offsets = (
            np.concatenate(parts) for parts in zip(*levels, strict=True)
        )
        keep = nms(boxes, scores, owner, 0.7)
        return _square(_regress(boxes[keep], offsets[keep])), scores[keep], owner[keep]

    def _scan(self, level: torch.Tensor, scale: float) -> tuple[np.ndarray, ...]:
        """PNet on the images shrunk by ``scale`` -> windows (in full image pixels), scores, owners, offsets."""
        prob, offsets = self.pnet(_normalise(level))
        owner, row, col = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
        corner = torch.stack([col, row], dim=1) * _PNET_STRIDE
        windows = (torch.cat([corner, corner + _PNET_CELL], dim=1) / scale).cpu().numpy()
        scores = prob[owner, row, col].cpu().numpy()
        owner, offsets = owner.cpu().numpy(), offsets[owner, :, row, col].cpu().numpy()
        keep = nms(windows, scores, owner, 0.5)
        return windows[keep], scores[keep], owner[keep], offsets[keep]

    def _refine(
        self, batch: torch.Tensor, boxes: np.ndarray, owner: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 2: RNet re-scores the candidates -> suppressed, regressed, squared boxes."""
        boxes, scores, owner, offsets = self._score(
            self.rnet, 24, self.thresholds[1], batch, boxes, owner
        )
        keep = nms(boxes, scores, owner, 0.7)
        return _square(_regress(boxes[keep], offsets[keep])), scores[keep], owner[keep]

    def _output(
        self, batch: torch.Tensor, boxes: np.ndarray, owner: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Stage 3: ONet's final scores and boxes; "min" overlap drops boxes inside a better one."""
        boxes, scores, owner, offsets = self._score(
            self.onet, 48, self.thresholds[2], batch, boxes, owner
        )
        boxes = _regress(boxes, offsets)
        keep = nms(boxes, scores, owner, 0.7, mode="min")
        return boxes[keep], scores[keep], owner[keep]

    def _score(
        self,
        net: nn.Module,
        size: int,
        threshold: float,
        batch: torch.Tensor,
        boxes: np.ndarray,
        owner: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Run ``net`` on size x size crops of ``boxes``; keep those scoring at least ``threshold``.

        Returns the kept boxes (unregressed), their scores, owners and the net's box offsets.
        """
        if len(boxes) == 0:
            return boxes, np.zeros(0), owner, np.zeros((0, 4))
        prob, offsets = net(_normalise(crop_boxes(batch, boxes, owner, size)))
        keep = (prob >= threshold).cpu().numpy()
        return boxes[keep], prob.cpu().numpy()[keep], owner[keep], offsets.cpu().numpy()[keep]


def crop_boxes(
    batch: torch.Tensor, boxes: np.ndarray, owner: np.ndarray, size: int
) -> torch.Tensor:
    """Resample every box of every image to (K, 3, size, size), zero (black) outside the image.

    One ``grid_sample`` per image covers all of that image's boxes, so the work stays on the device
    and no image is copied per box. Sampled on the raw 0-255 values so the padding is black as in
    the reference, not the grey that zero would mean after normalising.
    """
    _, channels, height, width = batch.shape
    side = size * _SUPERSAMPLE
    steps = (torch.arange(side, device=batch.device, dtype=torch.float32) + 0.5) / side
    corners = torch.as_tensor(boxes, dtype=torch.float32, device=batch.device)
    crops = batch.new_empty((len(boxes), channels, side, side))
    for index in np.unique(owner):
        mine = torch.as_tensor(np.flatnonzero(owner == index), device=batch.device)
        x1, y1, x2, y2 = corners[mine].unbind(dim=1)
        # grid_sample's normalised coordinate for continuous position p is 2p/extent - 1.
        xs = (x1[:, None] + steps * (x2 - x1)[:, None]) * (2 / width) - 1
        ys = (y1[:, None] + steps * (y2 - y1)[:, None]) * (2 / height) - 1
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
        sampled = F.grid_sample(
            batch[index : index + 1], grid.reshape(1, -1, side, 2), align_corners=False
        )
        crops[mine] = sampled.reshape(channels, -1, side, side).transpose(0, 1)
    return F.avg_pool2d(crops, _SUPERSAMPLE)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    owner: np.ndarray,
    threshold: float,
    mode: Literal["union", "min"] = "union",
) -> np.ndarray:
    """Greedy non-maximum suppression within each image; returns kept indices, image by image,
    best first within an image.

    A box is dropped when its overlap with a better box of the same image exceeds ``threshold``;
    overlap is intersection over union, or over the smaller area with ``mode="min"``.
    """
    kept = [
        mine[_nms_one(boxes[mine], scores[mine], threshold, mode)]
        for mine in (np.flatnonzero(owner == index) for index in np.unique(owner))
    ]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _nms_one(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: Literal["union", "min"]
) -> np.ndarray:
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        inter = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        inter *= np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        if mode == "min":
            denom = np.minimum(area[best], area[rest])
        else:
            denom = area[best] + area[rest] - inter
        order = rest[inter <= threshold * np.maximum(denom, 1e-9)]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply the nets' [dx1, dy1, dx2, dy2] offsets, in units of the box's width and height."""
    extent = boxes[:, 2:] - boxes[:, :2]
    return boxes + offsets * np.tile(extent, 2)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre: the next net sees a square crop undistorted."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1)
