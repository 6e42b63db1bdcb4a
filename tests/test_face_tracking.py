"""Detect only where needed (``face_tracking``): which frames are detected, what is carried between
them, and, with the real MTCNN, crops as good as full detection's on moving faces, two faces, a
face leaving the frame, two faces crossing and a scene cut."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dfdc_infer.config import InferenceConfig, preset_config
from dfdc_infer.cropping import select_faces
from dfdc_infer.face_detection import create_detector, detector_scale_for
from dfdc_infer.face_tracking import FaceTracker, box_iou, match_faces
from dfdc_infer.video_reading import read_video
from dfdc_sample.faces import vary_sprite, load_face_sprite, paste_sprite
from dfdc_sample.generate import generate_dataset

Truth = Callable[[int], list[tuple[float, float, float, float]]]
"""Frame position -> the true face boxes there."""


class ScriptedDetector:
    """Finds exactly the true boxes of the frames it is asked about (each frame's first pixel holds
    its position) and records which positions it was asked about."""

    def __init__(self, truth: Truth) -> None:
        self.truth = truth
        self.asked: list[int] = []

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        positions = [int(frame[0, 0, 0]) for frame in frames]
        self.asked += positions
        return [np.array([[*box, 0.99] for box in self.truth(position)], dtype=np.float32).reshape(-1, 5) for position in positions]


class ScriptedScorer(ScriptedDetector):
    """Also confirms given boxes: O-Net's stand-in says "face" (and regresses onto the true box) only
    where a true box overlaps the given one; elsewhere the face is gone (score 0.01)."""

    confirm_threshold = 0.8

    def score_boxes(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        scored = []
        for frame, given in zip(frames, boxes):
            truth = np.array(self.truth(int(frame[0, 0, 0])), dtype=np.float32).reshape(-1, 4)
            found = given[:, :5].copy()
            for row, box in enumerate(given):
                overlaps = box_iou(box[None, :4], truth)[0] if len(truth) else np.zeros(1)
                found[row] = [*truth[overlaps.argmax()], 0.999] if overlaps.max() > 0.3 else [*box[:4], 0.01]
            scored.append(found)
        return scored


def numbered(count: int) -> np.ndarray:
    frames = np.zeros((count, 4, 4, 3), dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(count)
    return frames


def sliding(position: int) -> list[tuple[float, float, float, float]]:
    """One face moving right 4 px per sampled frame."""
    return [(100.0 + 4 * position, 50.0, 200.0 + 4 * position, 170.0)]


def test_smooth_motion_is_detected_every_kth_frame_and_carried_linearly_between() -> None:
    detector = ScriptedDetector(sliding)
    tracker = FaceTracker(detector, every=4)
    found = tracker.detect(numbered(30), np.arange(0, 300, 10))
    assert sorted(detector.asked) == [0, 4, 8, 12, 16, 20, 24, 28, 29], "every 4th, the first and the last"
    assert tracker.detected_frames == 9
    for position, boxes in enumerate(found):
        assert boxes.shape == (1, 5) and boxes.dtype == np.float32
        np.testing.assert_allclose(boxes[0, :4], sliding(position)[0], atol=1e-3)


def test_every_one_detects_every_frame_in_one_call_as_the_dfdc_1st_preset_does() -> None:
    detector = ScriptedDetector(sliding)
    FaceTracker(detector, every=1).detect(numbered(30), np.arange(30))
    assert detector.asked == list(range(30))
    assert preset_config("dfdc-1st").detect_every == 1 and InferenceConfig().detect_every == 4


def test_interpolation_follows_frame_numbers_when_a_frame_is_missing() -> None:
    """A later frame that failed to decode leaves a hole in the indices: the box moves with time."""
    detector = ScriptedDetector(lambda position: [(position * 20.0, 0.0, position * 20.0 + 100, 100.0)])
    found = FaceTracker(detector, every=4).detect(numbered(3), np.array([0, 10, 40]))  # frames 20 and 30 are gone
    assert detector.asked == [0, 2]
    assert found[1][0, 0] == pytest.approx(10.0), "a quarter of the way from frame 0 (x 0) to frame 40 (x 40)"


@pytest.mark.parametrize(
    "case, truth",
    [
        ("a face leaves the frame after position 13", lambda p: sliding(p) if p <= 13 else []),
        ("a face appears at position 9", lambda p: sliding(p) if p >= 9 else []),
        ("a scene cut at position 10: the face jumps", lambda p: sliding(p) if p < 10 else [(500.0, 300.0, 600.0, 420.0)]),
        ("a second face for positions 5 to 21", lambda p: sliding(p) + ([(400.0, 40.0, 480.0, 140.0)] if 5 <= p <= 21 else [])),
    ],
)
def test_unsure_gaps_are_detected_until_every_frame_is_right(case: str, truth: Truth) -> None:
    detector = ScriptedDetector(truth)
    found = FaceTracker(detector, every=4).detect(numbered(30), np.arange(0, 300, 10))
    for position, boxes in enumerate(found):
        expected = np.array(truth(position), dtype=np.float32).reshape(-1, 4)
        assert len(boxes) == len(expected), f"{case}: position {position}"
        if len(expected):
            assert box_iou(boxes[:, :4], expected).max(axis=1).min() > 0.99, f"{case}: position {position}"
    assert len(set(detector.asked)) < 30, "the sure gaps were still carried"


def test_a_failed_confirmation_is_detected_and_the_scorers_box_replaces_the_carried_one() -> None:
    """The face is hidden at positions 5 to 7 (between two detected frames that agree): only the
    confirmation can tell, and those frames are detected."""
    hidden = lambda p: [] if 5 <= p <= 7 else sliding(p)  # noqa: E731
    detector = ScriptedScorer(hidden)
    found = FaceTracker(detector, every=4).detect(numbered(30), np.arange(0, 300, 10))
    assert {5, 6, 7} <= set(detector.asked)
    assert [len(boxes) for boxes in found[4:9]] == [1, 0, 0, 0, 1]
    assert found[1][0, 4] == pytest.approx(0.999), "a confirmed box carries the scorer's probability"


def test_a_face_that_turns_off_the_straight_line_is_detected() -> None:
    """Linear interpolation from positions 0 to 4 misses a face that went far and came back; the
    scorer's box moves off the carried one (IoU < 0.8), so the gap is detected."""
    detour = lambda p: [(100.0 + 60 * min(p, 4 - p), 50.0, 200.0 + 60 * min(p, 4 - p), 170.0)] if p <= 4 else sliding(4)  # noqa: E731
    detector = ScriptedScorer(detour)
    found = FaceTracker(detector, every=4).detect(numbered(9), np.arange(0, 90, 10))
    assert 2 in detector.asked
    for position, boxes in enumerate(found):
        assert box_iou(boxes[:, :4], np.array(detour(position), dtype=np.float32)).max() > 0.99


def test_two_faces_crossing_keep_two_boxes_on_the_faces() -> None:
    def crossing(position: int) -> list[tuple[float, float, float, float]]:
        left, right = 40.0 + 30 * position, 600.0 - 30 * position
        return [(left, 100.0, left + 100, 220.0), (right, 110.0, right + 100, 230.0)]

    detector = ScriptedScorer(crossing)
    found = FaceTracker(detector, every=4).detect(numbered(20), np.arange(0, 200, 10))
    for position, boxes in enumerate(found):
        assert len(boxes) == 2
        assert box_iou(boxes[:, :4], np.array(crossing(position), dtype=np.float32)).max(axis=1).min() > 0.99


def test_a_face_the_detector_flickers_on_is_kept_where_the_scorer_confirms_it() -> None:
    """The detector misses the second face at positions 4 and 8 only, so the gap from 4 to 8 agrees on
    one face; the carried frames between look for the second face where a nearby detected frame
    had it, and the scorer finds it there. A detected frame keeps what the detector said."""
    second = lambda p: [(400.0 + 4 * p, 40.0, 480.0 + 4 * p, 140.0)]  # noqa: E731
    truth = lambda p: sliding(p) + second(p)  # noqa: E731

    class Flickering(ScriptedScorer):
        def detect(self, frames: np.ndarray) -> list[np.ndarray]:
            found = super().detect(frames)
            return [boxes[:1] if int(frame[0, 0, 0]) in (4, 8) else boxes for frame, boxes in zip(frames, found)]

    found = FaceTracker(Flickering(truth), every=4).detect(numbered(16), np.arange(0, 160, 10))
    for position, boxes in enumerate(found):
        expected = np.array(truth(position) if position not in (4, 8) else sliding(position), dtype=np.float32)
        assert len(boxes) == len(expected), f"position {position}"
        assert box_iou(boxes[:, :4], expected).max(axis=1).min() > 0.99, f"position {position}"


def test_match_faces_pairs_by_overlap_and_refuses_lost_or_jumped_faces() -> None:
    a = np.array([[0, 0, 10, 10, 1], [100, 0, 110, 10, 1]], dtype=np.float32)
    b = np.array([[101, 0, 111, 10, 1], [1, 0, 11, 10, 1]], dtype=np.float32)
    assert match_faces(a, b) == [(0, 1), (1, 0)]
    assert match_faces(a, b[:1]) is None, "a face lost"
    assert match_faces(a[:1], np.array([[50, 50, 60, 60, 1]], dtype=np.float32)) is None, "a face jumped"
    assert match_faces(a[:0], b[:0]) == []


def test_auto_detector_scale_is_the_1st_places_rule_by_the_longer_side() -> None:
    assert [detector_scale_for(w, h, "auto") for w, h in [(256, 144), (300, 200), (640, 360), (1000, 562), (1280, 720),
                                                          (1900, 1000), (1920, 1080), (1080, 1920)]] == [2.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.33, 0.33]
    assert detector_scale_for(1920, 1080, 0.5) == 0.5


# --- the real MTCNN on rendered and generated videos ---------------------------------------------


def render(paths: list[Callable[[int], tuple[float, float, float]]], count: int, size: tuple[int, int] = (640, 360),
           cut: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """``count`` frames with one face per path (position -> centre x, y and face height), on a
    background that changes at ``cut``; returns the frames and the true boxes of the faces that
    are at least half inside the frame."""
    rng = np.random.default_rng(3)
    base = load_face_sprite()
    width, height = size
    backgrounds = [np.full((height, width, 3), value, np.uint8) for value in (70, 160)]
    sprites = [vary_sprite(base, rng, path(0)[2]) for path in paths]
    frames, truths = np.empty((count, height, width, 3), np.uint8), []
    for position in range(count):
        frame = backgrounds[int(cut is not None and position >= cut)].copy()
        boxes = []
        for sprite, path in zip(sprites, paths):
            x, y, face = path(position)
            box = paste_sprite(frame, sprite, x, y, face / sprite.face_height)
            if (box[2] - box[0]) * (box[3] - box[1]) >= 0.5 * face * face * 0.8:  # the face box is ~0.8 x its height wide
                boxes.append(box)
        frames[position] = frame
        truths.append(np.array(boxes, dtype=np.float32).reshape(-1, 4))
    return frames, truths


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector(InferenceConfig())


SCENES = {
    "a face leaving the frame": ([lambda p: (300 + 45 * p, 180, 110)], None),
    "two faces crossing": ([lambda p: (80 + 36 * p, 170, 100), lambda p: (560 - 36 * p, 190, 120)], None),
    "a scene cut: the face jumps": ([lambda p: (150 + 4 * p if p < 7 else 480, 150 if p < 7 else 220, 120)], 7),
}


@pytest.mark.parametrize("scene", SCENES)
def test_hard_scenes_lose_no_face_that_full_detection_finds(mtcnn, scene: str) -> None:
    paths, cut = SCENES[scene]
    frames, truths = render(paths, 14, cut=cut)
    indices = np.arange(0, 140, 10)
    full = mtcnn.detect(frames)
    tracker = FaceTracker(mtcnn, every=4)
    tracked = tracker.detect(frames, indices)
    assert tracker.detected_frames < len(frames) or scene == "two faces crossing"
    compared = 0
    for position, (mine, reference, truth) in enumerate(zip(tracked, full, truths)):
        found_by_full = [box for box in truth if len(reference) and box_iou(reference[:, :4], box[None])[:, 0].max() >= 0.5]
        compared += len(found_by_full)
        for box in found_by_full:
            assert len(mine) and box_iou(mine[:, :4], box[None])[:, 0].max() >= 0.5, f"{scene}: face lost at {position}"
        if len(mine):
            assert len(truth) and box_iou(mine[:, :4], truth).max(axis=1).min() >= 0.5, f"{scene}: a box on no face at {position}"
            assert box_iou(mine[:, :4], reference[:, :4]).max(axis=1).min() >= 0.8, f"{scene}: not where detection puts it"
    assert compared >= 0.8 * sum(len(truth) for truth in truths), f"{scene}: full detection itself found too few faces to compare"


@pytest.fixture(scope="module")
def moving_faces(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> Path:
    """Generated videos: one and two faces wandering over 150 frames (15 sampled), with ground truth."""
    return generate_dataset(tmp_path_factory.mktemp("moving") / "data", videos=6, frames=150, seed=11, identities=pinned_identities)


@pytest.mark.parametrize("all_faces", [False, True], ids=["largest face", "all faces"])
def test_crops_of_tracked_faces_match_the_ground_truth_as_full_detection_does(mtcnn, moving_faces: Path, all_faces: bool) -> None:
    """Every crop's box overlaps the true face box by IoU >= 0.8, or full detection's own box by
    as much where the truth is looser than any detector's box (the generator rolls and shears the
    faces: full detection's boxes then reach only IoU ~0.7 with ``faces.json``)."""
    faces = json.loads((moving_faces / "faces.json").read_text())
    metadata = json.loads((moving_faces / "metadata.json").read_text())
    reals = [name for name in sorted(faces) if metadata[name]["label"] == "REAL" and any(faces[name])]
    assert sorted(max(len(boxes) for boxes in faces[name]) for name in reals) == [1, 2]
    tracker = FaceTracker(mtcnn, every=4)
    frames_seen = 0
    for name in reals:
        sample = read_video(moving_faces / "test_videos" / name, InferenceConfig())
        tracked, full = tracker.detect(sample.frames, sample.indices), mtcnn.detect(sample.frames)
        frames_seen += len(sample.indices)
        for position, index in enumerate(sample.indices):
            truth = np.array(faces[name][index], dtype=np.float32)
            for box in select_faces(tracked[position], all_faces):
                closest = max(box_iou(box[None, :4], truth).max(), box_iou(box[None, :4], full[position][:, :4]).max())
                assert closest >= 0.8, f"{name} frame {index}: crop box off the face"
            for box in truth:
                if box_iou(full[position][:, :4], box[None]).max() >= 0.5:
                    assert box_iou(tracked[position][:, :4], box[None]).max() >= 0.5, f"{name} frame {index}: face lost"
    assert tracker.detected_frames < frames_seen * 0.75, "most frames were carried, not detected"


def test_auto_scale_finds_every_face_the_fixed_half_scale_finds(mtcnn, sample_data: Path) -> None:
    """At 640x360 ``auto`` detects at full size (1x) where the old default halved the frames."""
    faces = json.loads((sample_data / "faces.json").read_text())
    half = create_detector(InferenceConfig(detector_scale=0.5))
    found = {"auto": 0, "half": 0}
    for name in sorted(faces):
        sample = read_video(sample_data / "test_videos" / name, InferenceConfig())
        by_scale = {"auto": mtcnn.detect(sample.frames), "half": half.detect(sample.frames)}
        for position, index in enumerate(sample.indices):
            for box in np.array(faces[name][index], dtype=np.float32).reshape(-1, 4):
                hits = {scale: len(boxes[position]) > 0 and box_iou(boxes[position][:, :4], box[None]).max() >= 0.5
                        for scale, boxes in by_scale.items()}
                assert hits["auto"] or not hits["half"], f"{name} frame {index}: auto lost a face 0.5 finds"
                found = {scale: found[scale] + hits[scale] for scale in found}
    assert found["auto"] >= found["half"] > 0
