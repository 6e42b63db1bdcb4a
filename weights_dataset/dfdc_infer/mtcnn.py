"""MTCNN face detector (Zhang et al., 2016, "Joint Face Detection and Alignment using Multitask
Cascaded Convolutional Networks"), in this project's own torch code, computing what facenet-pytorch
2.6.0's ``MTCNN.detect`` computes.

Three nets in cascade: PNet scans an image pyramid as a fully convolutional net and proposes
candidate boxes, RNet re-scores 24x24 crops of them, ONet re-scores 48x48 crops and gives the final
boxes and five landmarks. The modules carry the attribute names of facenet-pytorch's published
state_dicts so those load with ``strict=True``; the weights are Caffe/MATLAB originals converted,
hence the RGB input normalised as ``(x - 127.5) / 128`` and the (N, W, H, C) flattening order
before the dense layers.

Why equal to the reference, not merely similar: the DFDC 1st place's classifiers were trained on
crops around facenet-pytorch's boxes, and a box a few pixels off shifts and rescales their input.
So every convention of the reference is kept, however odd: pyramid levels of
``int(side * scale + 1)`` pixels, PNet windows rounded down, box regression without (stage 1) and
with (stages 2, 3) the "+1" width, squaring, crops cut at whole pixels starting one pixel before
the truncated corner (MATLAB's 1-based legacy), cut at the image edges and stretched (not padded),
strict ``>`` thresholds after PNet, torchvision's NMS, and a final "Min" NMS with "+1" areas. The
box arithmetic runs as the same float32 torch expressions, because a coordinate one ulp below an
integer truncates to a different crop. ``tests/test_mtcnn_reference.py`` runs the reference beside
this code: boxes agree to about 1e-4 px. Where the reference fails (an image smaller than the
smallest face; a box with no pixel inside the image) this code finds no face and scores 0.

Batched and fast all the same: the convolutions run over all images of a call (on the GPU when
there is one), and R/O-Net crops are area-resampled for all boxes at once from an integral image
(the reference loops over boxes in Python, one ``interpolate`` each); only the final NMS, over the
few boxes ONet keeps, loops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

PYRAMID_FACTOR = 0.709
"""Ratio between consecutive pyramid levels: the original release's value, kept by its ports."""
_PNET_CELL = 12
_PNET_STRIDE = 2
_CROPS_PER_PASS = 512
"""R/O-Net crops per forward pass (the reference's chunk): bounds memory, ONet's first activation
for 512 crops is 139 MB."""


class Faces(NamedTuple):
    """One image's faces, best first (or in the order given, for ``MTCNN.score_boxes``)."""

    boxes: np.ndarray
    """(K, 5) float32 ``[x1, y1, x2, y2, probability]``, unclamped."""
    landmarks: np.ndarray
    """(K, 5, 2) float32 ``(x, y)`` of the left eye, right eye, nose, left and right mouth corners
    (left and right as seen in the image)."""


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
    """Output net on 48x48 crops."""

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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised (K, 3, 48, 48) -> face probability (K,), box offsets (K, 4) and landmarks
        (K, 10): five x then five y, as fractions of the crop's side."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_caffe(self.prelu4(self.conv4(x)))))
        return torch.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


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

    def detect(self, images: np.ndarray | torch.Tensor, min_face_size: float | None = None) -> list[np.ndarray]:
        """(N, H, W, 3) uint8 RGB, numpy or torch -> N arrays (K, 5) float32 [x1, y1, x2, y2, score],
        best first: ``detect_with_landmarks`` without the landmarks."""
        return [faces.boxes for faces in self.detect_with_landmarks(images, min_face_size)]

    @torch.inference_mode()
    def detect_with_landmarks(self, images: np.ndarray | torch.Tensor, min_face_size: float | None = None) -> list[Faces]:
        """(N, H, W, 3) uint8 RGB, numpy or torch -> each image's faces, best first.

        ``min_face_size`` (pixels of these images; default: the constructor's) only sets the pyramid,
        so one cascade serves frames resized by any scale.

        The boxes and probabilities are facenet-pytorch 2.6.0's ``MTCNN.detect`` at the same
        settings (which orders them largest first instead); coordinates are unclamped, in pixels
        of the images given.
        """
        pixels = self._to_device(images)
        # NCHW, converted into contiguous memory in one copy: the pyramid's area resampling takes a third
        # less time on it than on the permuted (channels-last) view, with the same values (facenet-pytorch parity tests)
        batch = pixels.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
        boxes, owner = self._propose(batch, self.min_face_size if min_face_size is None else min_face_size)
        boxes, owner = self._refine(pixels, boxes, owner)
        return self._output(pixels, boxes, owner)

    @torch.inference_mode()
    def score_boxes(
        self, images: np.ndarray | torch.Tensor, boxes_per_image: Sequence[np.ndarray]
    ) -> list[Faces]:
        """ONet alone on given boxes: is each face still there, and where exactly?

        ``boxes_per_image``: one (K, 4+) array per image, ``[x1, y1, x2, y2, ...]`` in its pixels
        (e.g. this detector's boxes from a nearby frame). Each box is squared as the cascade squares
        ONet's input, then scored. Returns, per image and in the given order, the ONet probability
        with the box ONet regresses (``boxes``) and the landmarks; no threshold, no suppression.
        A cheap confirmation when full detection is skipped on some frames.

        A detection's final box is not what its ONet saw (the square of the box before the last
        regression, about 5% larger), so scoring it again gives another probability: on the test
        photos and generated frames at least 0.99 for 95% of the faces, far less for a few small ones.
        """
        pixels = self._to_device(images)
        if len(boxes_per_image) != len(pixels):
            raise ValueError(f"{len(pixels)} images but boxes for {len(boxes_per_image)}")
        counts = [len(boxes) for boxes in boxes_per_image]
        given = [np.zeros((0, 4), np.float32), *(np.asarray(boxes, np.float32)[:, :4] for boxes in boxes_per_image)]
        boxes = _square(torch.as_tensor(np.concatenate(given), device=self.device))
        owner = torch.as_tensor(np.repeat(np.arange(len(counts)), counts), device=self.device)
        prob, offsets, points = _run_on_crops(self.onet, 48, pixels, boxes, owner)
        landmarks = _place_landmarks(boxes, points)
        scored = torch.cat([_regress(boxes, offsets, 1.0), prob[:, None]], dim=1)
        return [
            Faces(b.numpy(), l.numpy())
            for b, l in zip(scored.cpu().split(counts), landmarks.cpu().split(counts), strict=True)
        ]

    def _to_device(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The images on the device as given, (N, H, W, 3) uint8."""
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.require(images, requirements=["C", "W"]))
        return images.to(self.device)

    @staticmethod
    def _pyramid(height: int, width: int, min_face_size: float) -> list[float]:
        """Scales at which PNet's 12 px window covers faces from ``min_face_size`` to the image size,
        by the reference's float steps (a scale one ulp off can change a level's size)."""
        scale = _PNET_CELL / min_face_size
        shorter = min(height, width) * scale
        scales = []
        while shorter >= _PNET_CELL:
            scales.append(scale)
            scale *= PYRAMID_FACTOR
            shorter *= PYRAMID_FACTOR
        return scales

    def _propose(self, batch: torch.Tensor, min_face_size: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 1: PNet windows over the pyramid, suppressed per level then across levels ->
        regressed, squared candidates and their images."""
        height, width = batch.shape[2:]
        levels = [self._scan(batch, scale) for scale in self._pyramid(height, width, min_face_size)]
        if not levels:  # image smaller than the smallest face looked for
            return batch.new_zeros((0, 4)), torch.zeros(0, dtype=torch.long, device=batch.device)
        windows, scores, offsets, owner = (torch.cat(parts) for parts in zip(*levels, strict=True))
        keep = batched_nms(windows, scores, owner, 0.7)
        return _square(_regress(windows[keep], offsets[keep], 0.0)), owner[keep]

    def _scan(self, batch: torch.Tensor, scale: float) -> tuple[torch.Tensor, ...]:
        """PNet on every image shrunk by ``scale`` (area averaging, from the full image) -> the
        windows it keeps (in image pixels) with scores, offsets and images, best first per image."""
        height, width = batch.shape[2:]
        level = F.interpolate(batch, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
        prob, offsets = self.pnet(_normalise(level))
        owner, row, col = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
        corner = torch.stack([col, row], dim=1).float()
        windows = torch.cat(
            [((_PNET_STRIDE * corner + 1) / scale).floor(), ((_PNET_STRIDE * corner + _PNET_CELL) / scale).floor()],
            dim=1,
        )
        scores = prob[owner, row, col]
        keep = batched_nms(windows, scores, owner, 0.5)
        return windows[keep], scores[keep], offsets[owner, :, row, col][keep], owner[keep]

    def _refine(
        self, pixels: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: RNet re-scores the candidates -> suppressed, regressed, squared boxes."""
        prob, offsets = _run_on_crops(self.rnet, 24, pixels, boxes, owner)
        passed = prob > self.thresholds[1]
        boxes, prob, offsets, owner = boxes[passed], prob[passed], offsets[passed], owner[passed]
        keep = batched_nms(boxes, prob, owner, 0.7)
        return _square(_regress(boxes[keep], offsets[keep], 1.0)), owner[keep]

    def _output(
        self, pixels: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor
    ) -> list[Faces]:
        """Stage 3: ONet's final scores, boxes and landmarks; "min" overlap drops boxes inside a
        better one."""
        prob, offsets, points = _run_on_crops(self.onet, 48, pixels, boxes, owner)
        passed = prob > self.thresholds[2]
        boxes, prob, offsets, points = boxes[passed], prob[passed], offsets[passed], points[passed]
        landmarks = _place_landmarks(boxes, points).cpu().numpy()
        scored = torch.cat([_regress(boxes, offsets, 1.0), prob[:, None]], dim=1).cpu().numpy()
        owner = owner[passed].cpu().numpy()
        faces = []
        for index in range(len(pixels)):
            mine = np.flatnonzero(owner == index)
            mine = mine[_nms_min(scored[mine], 0.7)]
            faces.append(Faces(scored[mine], landmarks[mine]))
        return faces


def _run_on_crops(
    net: nn.Module, size: int, pixels: torch.Tensor, boxes: torch.Tensor, owner: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """``net`` on size x size crops of ``boxes`` (of images ``owner``), in passes of
    ``_CROPS_PER_PASS``; a box with no pixel inside its image scores 0."""
    regions, inside = _pixel_regions(boxes, pixels.shape[2], pixels.shape[1])
    integral, regions = _integral_image(pixels, regions)
    outputs = [
        net(_normalise(_area_resample(integral, owner[start:end], regions[start:end], size)))
        for start, end in _passes(len(boxes))
    ]
    prob, *rest = (torch.cat(parts) for parts in zip(*outputs, strict=True))
    return (prob.where(inside, 0.0), *rest)


def _passes(count: int) -> list[tuple[int, int]]:
    """Chunks of at most ``_CROPS_PER_PASS``; one empty chunk for no boxes, so the nets still say
    what they return."""
    return [(start, start + _CROPS_PER_PASS) for start in range(0, max(count, 1), _CROPS_PER_PASS)]


def _integral_image(pixels: torch.Tensor, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W, C) uint8 -> integer sums of everything above and left, (N, h + 1, w + 1, C), over
    the smallest rectangle holding every region, and the regions in its coordinates. (Summing
    whole frames is the cost of this way of cropping: for 16 halved 1080p frames on CPU, more than
    R- and ONet's passes; the candidates of the sample videos span about half a frame.)

    Integers, so every region's sum is exact, as the reference's float32 sums of whole pixel
    values are (crop cells stay far below 2**24); int32 while the rectangle's sum fits.
    """
    left, top = regions[:, :2].amin(0).tolist() if len(regions) else (0, 0)
    right, bottom = regions[:, 2:].amax(0).tolist() if len(regions) else (1, 1)
    window = pixels[:, top:bottom, left:right]
    dtype = torch.int32 if window.shape[1] * window.shape[2] * 255 < 2**31 else torch.int64
    sums = window.cumsum(1, dtype=dtype).cumsum(2, dtype=dtype)
    return F.pad(sums, (0, 0, 1, 0, 1, 0)), regions - regions.new_tensor([left, top, left, top])


def _pixel_regions(boxes: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole pixels the reference cuts for each box: from one pixel before the truncated top
    left corner to the truncated bottom right corner, cut at the image's edges.

    Returns (K, 4) ``[left, top, right, bottom)`` and whether each region is non-empty; an empty
    one is replaced by the first pixel so it can still be resampled (its score is discarded).
    """
    corners = boxes.trunc().long()
    left = corners[:, 0].clamp(min=1) - 1
    top = corners[:, 1].clamp(min=1) - 1
    right = corners[:, 2].clamp(max=width)
    bottom = corners[:, 3].clamp(max=height)
    inside = (right > left) & (bottom > top)
    regions = torch.stack([left, top, right, bottom], dim=1)
    return regions.where(inside[:, None], regions.new_tensor([0, 0, 1, 1])), inside


def _area_resample(integral: torch.Tensor, owner: torch.Tensor, regions: torch.Tensor, size: int) -> torch.Tensor:
    """Each integer region of its image -> (K, C, size, size) float32, exactly what
    ``F.interpolate(crop, (size, size), mode="area")`` gives for each crop alone.

    That is adaptive average pooling: output cell i averages input rows floor(i * h / size) to
    ceil((i + 1) * h / size) (and columns alike), so a region smaller than the output repeats
    pixels. Four lookups in the integral image per cell; the mean divides by the rows, then by the
    columns, as torch's kernel does, so the float32 result is bit for bit the same.
    """
    left, top, right, bottom = regions.unbind(1)
    steps = torch.arange(size, device=regions.device)

    def cell_edges(start: torch.Tensor, end: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        extent = (end - start)[:, None]
        return start[:, None] + steps * extent // size, start[:, None] + ((steps + 1) * extent + size - 1) // size

    y0, y1 = cell_edges(top, bottom)
    x0, x1 = cell_edges(left, right)
    # The integral flattened to (N * rows * columns, C): index_select of one row per corner is
    # three times faster than indexing image, y and x separately.
    _, rows, columns, channels = integral.shape
    flat = integral.reshape(-1, channels)
    first = (owner[:, None] * rows + y0) * columns
    last = (owner[:, None] * rows + y1) * columns

    def corner(row: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        index = row[:, :, None] + column[:, None, :]
        return flat.index_select(0, index.reshape(-1)).reshape(*index.shape, channels)

    sums = corner(last, x1) - corner(first, x1) - corner(last, x0) + corner(first, x0)
    means = sums.float() / (y1 - y0)[:, :, None, None].float() / (x1 - x0)[:, None, :, None].float()
    return means.permute(0, 3, 1, 2)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor, extra: float) -> torch.Tensor:
    """Apply the nets' [dx1, dy1, dx2, dy2] offsets, in units of the box's width and height plus
    ``extra``: 0 after PNet, 1 (MATLAB's inclusive pixel count) after R- and ONet, as the reference."""
    width = boxes[:, 2] - boxes[:, 0] + extra
    height = boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * torch.stack([width, height, width, height], dim=1)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square around its centre: the next net sees a square crop undistorted."""
    width = boxes[:, 2] - boxes[:, 0]
    height = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    x1 = boxes[:, 0] + width * 0.5 - side * 0.5
    y1 = boxes[:, 1] + height * 0.5 - side * 0.5
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _place_landmarks(boxes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """ONet's landmark fractions of the (squared, unregressed) input boxes -> (K, 5, 2) pixels,
    with the reference's +1 size and -1 offset."""
    width = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    height = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    xs = width * points[:, :5] + boxes[:, :1] - 1
    ys = height * points[:, 5:] + boxes[:, 1:2] - 1
    return torch.stack([xs, ys], dim=2)


def _nms_min(scored: np.ndarray, threshold: float) -> np.ndarray:
    """The reference's final greedy suppression on one image's (K, 5) boxes: a box goes when
    its intersection over the smaller of the two areas exceeds ``threshold``, areas and overlaps
    counted with "+1" (inclusive pixels). Returns kept indices, best first.

    Equal scores are common (ONet's probabilities saturate in float32: two candidates of one face
    often score the very same 0.99778074), so the order among them decides which box is the face:
    the reference's own ascending ``np.argsort`` of the scores (numpy's default, unstable sort, whose
    tie order is not the index order), picked from the end."""
    x1, y1, x2, y2, scores = scored.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        order = rest[width * height / np.minimum(area[best], area[rest]) <= threshold]
    return np.asarray(keep, dtype=np.int64)
