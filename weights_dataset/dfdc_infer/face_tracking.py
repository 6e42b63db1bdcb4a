"""Detect only where needed: run the face detector on a few sampled frames, carry faces between.

Detection is most of a video's cost on the CPU (MTCNN's image pyramid on every sampled frame),
yet the faces of a DFDC video move slowly and smoothly. ``FaceTracker`` therefore:

1. detects on every ``every``-th sampled frame and always on the first and the last;
2. between two detected frames, pairs their faces (a greedy match by box overlap) and moves each
   pair's box linearly with the frame number, which makes one face track per pair;
3. confirms every interpolated box with the detector's own last stage where it has one (MTCNN's
   O-Net on the given box, ``score_boxes``): its face probability must pass the detector's own
   O-Net threshold, as a detected face's does, and the box O-Net regresses from it must still
   overlap it by ``CONFIRM_IOU``; O-Net's box then replaces the interpolated one, so a carried
   box sits where a detection would have put it;
4. where a gap is unsure, detects its middle frame and looks at both halves again, until every
   gap is sure or has no frame left inside it. A gap is unsure when the two ends do not hold the
   same faces (a face lost, leaving the frame, or new), when a face moved so far that its boxes
   no longer overlap enough (a jump: a scene cut, two faces crossing), or when a confirmation
   fails (no face there any more, or the face left the straight line);
5. looks with O-Net, in each carried frame, for the faces a detected frame near it holds and it
   lacks (the detector flickering on a weak face), and keeps those O-Net confirms.

Measured on generated 640x360 and 1080p videos whose faces wander fast (up to a third of the
frame per second; DFDC's faces move less): with ``every=4`` the detector ran on 42% of the sampled
frames, every largest-face crop kept IoU >= 0.8 with the true box (as full detection does), and no
face that full detection finds was lost.

The result has the detector's own format (one ``(K, 5)`` array per frame, best first), so
cropping does not know which boxes were detected and which were carried. ``every=1`` detects
every sampled frame (the ``dfdc-1st`` preset does, like its reference).

What it cannot see: a face that appears and vanishes again between two detected frames that
agree and that no detected frame near it holds. Gaps are ``every`` sampled frames wide (40 video
frames by default), shorter than a DFDC face's time on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .face_detection import FaceDetector
from .video_reading import Frames

MATCH_IOU = 0.3
"""Smallest overlap (IoU) of one face's boxes on two detected frames that still counts as the same
face moving smoothly; below it the face jumped, and the frames between are detected."""

CONFIRM_IOU = 0.8
"""Smallest overlap of a carried box with the box O-Net regresses from it: below it the face did
not move as the straight line between the detected frames says, and the frames between are detected."""


class BoxScorer(Protocol):
    """A detector that can also look at given boxes only (MTCNN: its O-Net)."""

    confirm_threshold: float
    """A box scoring below this is not a face (the detector's own last-stage threshold)."""

    def score_boxes(self, frames: Sequence[Frames], boxes: list[np.ndarray]) -> list[np.ndarray]:
        """For each frame's (K, 4+) full-resolution boxes, (K, 5) in the same order: the face box
        the scorer finds at each (O-Net's regressed box) and its face probability. ``frames``: one (H, W, 3)
        frame per entry of ``boxes``, stacked or a list of views (the tracker passes views, so the
        frames it asks about are not copied: 6 MB each at 1080p)."""
        ...


class FaceTracker:
    """Wraps a ``FaceDetector``: detections for every sampled frame, detecting only some of them."""

    def __init__(self, detector: FaceDetector, every: int) -> None:
        if every < 1:
            raise ValueError(f"detect_every must be >= 1, got {every}")
        self.detector = detector
        self.every = every
        self.scorer: BoxScorer | None = detector if hasattr(detector, "score_boxes") else None  # type: ignore[assignment]
        self.detected_frames = 0
        """Frames the detector ran on, summed over calls (the benchmark reports the share)."""

    def detect(self, frames: Frames, indices: np.ndarray) -> list[np.ndarray]:
        """(N, H, W, 3) frames and their (N,) frame numbers -> N (K, 5) arrays, as ``FaceDetector.detect``."""
        count = len(frames)
        if self.every == 1 or count <= 2:
            self.detected_frames += count
            return self.detector.detect(frames)
        indices = np.asarray(indices, dtype=np.float64)
        found: dict[int, np.ndarray] = {}
        carried: dict[int, np.ndarray] = {}
        todo = sorted({*range(0, count, self.every), count - 1})
        while todo:
            for position, detections in zip(todo, self.detector.detect(frames[todo])):
                found[position] = detections
            self.detected_frames += len(todo)
            keys = sorted(found)
            gaps = [(a, b) for a, b in zip(keys, keys[1:]) if b - a > 1 and a + 1 not in carried]
            guesses = {gap: _interpolate(found[gap[0]], found[gap[1]], indices[gap[0] : gap[1] + 1]) for gap in gaps}
            sure = {gap: boxes for gap, boxes in guesses.items() if boxes is not None}
            if self.scorer is not None:
                sure = self._confirmed(frames, sure)
            for (a, _), boxes in sure.items():
                carried.update(zip(range(a + 1, a + 1 + len(boxes)), boxes))
            todo = sorted((a + b) // 2 for a, b in gaps if (a, b) not in sure)
        if self.scorer is not None:
            self._recover(frames, found, carried)
        return [found[position] if position in found else _best_first(carried[position]) for position in range(count)]

    def _recover(self, frames: Frames, found: dict[int, np.ndarray], carried: dict[int, np.ndarray]) -> None:
        """Adds to each carried frame the faces that a detected frame at most ``every`` positions away
        holds and it lacks, where the scorer confirms them at that frame.

        The detector can flicker on a weak face (found at position 9, missed at 10 and 12): the gap
        from 10 to 12 then agrees on one face and would carry one, though full detection finds two
        at 11. Each missing face is looked for at its box on the nearest detected frame holding it and
        kept where O-Net calls it a face whose box still overlaps that one as the same face does
        (``MATCH_IOU``: the face moved in between) without landing on a face the frame already has."""
        asks: list[tuple[int, np.ndarray]] = []
        for position, boxes in carried.items():
            known = list(boxes[:, :4])
            for near in sorted(found, key=lambda q: (abs(q - position), q)):
                if abs(near - position) > self.every:
                    break
                for box in found[near]:
                    if not known or box_iou(np.array(known), box[None, :4]).max() < MATCH_IOU:
                        known.append(box[:4])
                        asks.append((position, box[None]))
        if not asks:
            return
        scored = self.scorer.score_boxes([frames[position] for position, _ in asks], [box for _, box in asks])
        for (position, given), result in zip(asks, scored):
            confirmed = result[0, 4] >= self.scorer.confirm_threshold and box_iou(given[:, :4], result[:, :4])[0, 0] >= MATCH_IOU
            merged = np.concatenate([carried[position], result]).astype(np.float32)
            if confirmed and not _collided(merged):  # a new face, not one carried already
                carried[position] = merged

    def _confirmed(self, frames: Frames, gaps: dict[tuple[int, int], np.ndarray]) -> dict[tuple[int, int], np.ndarray]:
        """The gaps whose every carried box the scorer accepts, each box replaced by the one the
        scorer found there (O-Net's regression puts it where a detection would have)."""
        positions = [(gap, offset) for gap, boxes in gaps.items() for offset in range(len(boxes)) if boxes.shape[1]]
        if not positions:
            return gaps
        frame_positions = [gap[0] + 1 + offset for gap, offset in positions]
        scored = self.scorer.score_boxes([frames[p] for p in frame_positions], [gaps[gap][offset] for gap, offset in positions])
        failed = set()
        for (gap, offset), found in zip(positions, scored):
            moved = np.diag(box_iou(gaps[gap][offset, :, :4], found[:, :4]))
            if np.any(found[:, 4] < self.scorer.confirm_threshold) or np.any(moved < CONFIRM_IOU):
                failed.add(gap)
            gaps[gap][offset] = found
        return {gap: boxes for gap, boxes in gaps.items() if gap not in failed}


def _collided(boxes: np.ndarray) -> bool:
    """Whether two of a frame's boxes overlap like one face (IoU >= ``MATCH_IOU``)."""
    overlaps = box_iou(boxes[:, :4], boxes[:, :4])
    np.fill_diagonal(overlaps, 0)
    return bool(np.any(overlaps >= MATCH_IOU))


def _interpolate(first: np.ndarray, last: np.ndarray, indices: np.ndarray) -> np.ndarray | None:
    """Boxes of the frames strictly between two detected ones, (M, K, 5), or None when unsure.

    ``indices`` are the frame numbers from the first detected frame to the last one; each paired
    face moves linearly with them and scores as the weaker of its two ends.
    """
    pairs = match_faces(first, last)
    if pairs is None:
        return None
    weights = ((indices[1:-1] - indices[0]) / (indices[-1] - indices[0]))[:, None, None]
    start = first[[i for i, _ in pairs]]
    end = last[[j for _, j in pairs]]
    boxes = (1 - weights) * start[None, :, :4] + weights * end[None, :, :4]
    scores = np.broadcast_to(np.minimum(start[:, 4], end[:, 4]), boxes.shape[:2])
    return np.concatenate([boxes, scores[..., None]], axis=2).astype(np.float32)


def match_faces(first: np.ndarray, last: np.ndarray, min_iou: float = MATCH_IOU) -> list[tuple[int, int]] | None:
    """Pair the faces of two frames, best overlap first; None unless every face of each frame has
    a partner overlapping it by at least ``min_iou`` (same count, nothing lost, nothing jumped)."""
    if len(first) != len(last):
        return None
    overlaps = box_iou(first[:, :4], last[:, :4])
    pairs: list[tuple[int, int]] = []
    for flat in np.argsort(-overlaps, axis=None, kind="stable"):
        i, j = divmod(int(flat), len(last))
        if overlaps[i, j] < min_iou:
            break
        if all(i != a and j != b for a, b in pairs):
            pairs.append((i, j))
    return sorted(pairs) if len(pairs) == len(first) else None


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(A, 4) and (B, 4) ``[x1, y1, x2, y2]`` boxes -> (A, B) intersection over union."""
    low = np.maximum(first[:, None, :2], second[None, :, :2])
    high = np.minimum(first[:, None, 2:], second[None, :, 2:])
    intersection = np.prod(np.clip(high - low, 0, None), axis=2)
    area = lambda boxes: np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)  # noqa: E731
    union = area(first)[:, None] + area(second)[None, :] - intersection
    return intersection / np.maximum(union, 1e-9)


def _best_first(boxes: np.ndarray) -> np.ndarray:
    return boxes[np.argsort(-boxes[:, 4], kind="stable")]
